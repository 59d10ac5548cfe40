"""bench/fidelity.py end to end on one pair (fork and its twin) and the whole-stack
comparison, one round, tiny runs: the result file has its shape, both servers moved bytes in
every mode, and a side that cannot start is recorded with its reason instead of stopping the
run."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import schema_check

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.environ.get("ECHOLAB_BINARY_DIR", os.path.join(REPO, "build", "debug"))
FIDELITY = os.path.join(REPO, "bench", "fidelity.py")
TINY = ["--rounds", "1", "--warmup", "0.05", "--duration", "0.2", "--modes", "closed:1,closed:4,connect:2"]


def run_fidelity(out, *extra, build_dir=BUILD_DIR):
    return subprocess.run(["/usr/bin/python3", FIDELITY, "--build-dir", build_dir, "--engines", "fork",
                           "--out", out, *TINY, *extra], capture_output=True, text=True, timeout=60)


class Fidelity(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fidelity-test-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def test_one_pair_has_every_mode_and_both_sides_move_bytes(self):
        out = os.path.join(self.tmp, "fidelity.json")
        done = run_fidelity(out, "--stack-connections", "2")
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(out) as f:
            result = json.load(f)
        self.assertEqual(result["benchmark"], "fidelity")
        schema_check.load_validators()["host"].validate(result["context"])  # one vocabulary
        for key in ("date_utc", "command"):
            self.assertIn(key, result["context"])
        self.assertEqual(len(result["pairs"]), 1)
        pair = result["pairs"][0]
        self.assertEqual((pair["engine"], pair["twin"]), ("fork", "twin-fork"))
        self.assertEqual([(m["mode"], m["connections"]) for m in pair["modes"]],
                         [("closed", 1), ("closed", 4), ("connect", 2)])
        for entry in pair["modes"]:
            for side in ("engine", "twin"):
                runs = entry[side]
                self.assertEqual(len(runs), 1, (entry["mode"], side))
                self.assertGreater(runs[0].get("bytes_received", 0), 0, (entry["mode"], side, runs[0]))
                self.assertGreater(runs[0].get("rate", 0), 0, (entry["mode"], side, runs[0]))
                self.assertIn("p99_us", runs[0])
                self.assertIn("valid", runs[0])
                self.assertIn("server_cpu_us_per_unit", runs[0])  # may be 0 ticks in so short a run
            self.assertIn("ratio", entry)
            self.assertIn("cpu_ratio", entry)
        self.assertGreater(pair["memory_kb"]["engine"].get("VmRSS", 0), 0)

        # The whole stack: echolab-loadgen + epoll engine against bare client + epoll twin.
        stack = result["stack"]
        self.assertEqual((stack["mode"], stack["connections"]), ("closed", 2))
        for side in ("engine", "twin"):
            self.assertEqual(len(stack[side]), 1, side)
            self.assertTrue(stack[side][0]["valid"], stack[side][0])
            self.assertGreater(stack[side][0]["rate"], 0, stack[side][0])
        self.assertGreater(stack["ratio"], 0)

    def test_a_twin_that_cannot_start_is_a_recorded_failure(self):
        # A build directory whose twin-fork exits at once: every twin run carries the reason,
        # the engine runs still happen, and the file is written.
        fake = os.path.join(self.tmp, "build")
        for sub in ("servers", "loadgen", "bench/twins"):
            os.makedirs(os.path.join(fake, sub))
        for sub, name in (("servers", "echolab-server"), ("loadgen", "echolab-loadgen")):
            os.symlink(os.path.join(os.path.abspath(BUILD_DIR), sub, name), os.path.join(fake, sub, name))
        broken = os.path.join(fake, "bench", "twins", "twin-fork")
        with open(broken, "w") as f:
            f.write("#!/bin/sh\necho 'twin-fork: bind: Address already in use' >&2\nexit 1\n")
        os.chmod(broken, 0o755)
        out = os.path.join(self.tmp, "broken.json")
        done = run_fidelity(out, "--stack-connections", "0", build_dir=fake)
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(out) as f:
            entry = json.load(f)["pairs"][0]["modes"][0]
        self.assertFalse(entry["twin"][0]["valid"])
        self.assertIn("Address already in use", entry["twin"][0]["reason"])
        self.assertTrue(entry["engine"][0]["valid"], entry["engine"][0])
        self.assertIsNone(entry["ratio"])


if __name__ == "__main__":
    unittest.main()
