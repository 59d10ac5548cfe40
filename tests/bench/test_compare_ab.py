"""echolab-bench --candidate-server-args and --aa end to end, judged by echolab-compare: the
same build with a 200 µs CPU cost per message is a regression; the baseline against its own
second run (A/A) is not. Two tiny cells, real servers, about half a minute."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import schema_check  # noqa: E402
from bench_harness import REPO, run_bench  # noqa: E402

SPEC = {"name": "ab-tiny", "repetitions": 5,
        "defaults": {"warmup_s": 0.2, "duration_s": 0.5, "timeout_s": 0.5, "connections": 1},
        "matrix": [{"engine": ["select", "thread"], "mode": "closed"}]}


class AbRun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="echolab-ab-test-")
        cls.bench = run_bench(SPEC, cls.tmp.name, "ab", "--candidate-server-args=--work cpu:200us", "--aa",
                              timeout=150)
        cls.out = os.path.join(cls.tmp.name, "ab")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def compare(self, path):
        return subprocess.run([sys.executable, os.path.join(REPO, "bench", "echolab-compare"), path,
                               "--markdown", "-", "--quiet"], capture_output=True, text=True, timeout=60)

    def manifest(self):
        with open(os.path.join(self.out, "manifest.json")) as f:
            return json.load(f)

    def test_run_records_every_side(self):
        self.assertEqual(self.bench.returncode, 0, self.bench.stderr)
        manifest = self.manifest()
        self.assertEqual(manifest["sides"]["B"]["server_args"], ["--work", "cpu:200us"])
        ids = [c["id"] for c in manifest["cells"]]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertEqual(len(ids), 2 * 5 * 3)
        self.assertTrue(all(c["status"] == "ok" for c in manifest["cells"]), manifest["cells"])
        # ABBA: within each cell and repetition the sides take turns, and the first alternates.
        firsts = [c["side"] for c in manifest["cells"][::3]]
        self.assertIn("A", firsts)
        self.assertIn("B", firsts)
        try:
            validators = schema_check.load_validators()
        except ImportError:
            return
        validators["bench-manifest"].validate(manifest)
        for entry in manifest["cells"]:
            with open(os.path.join(self.out, entry["file"])) as f:
                record = json.load(f)
            validators["bench-cell"].validate(record)
            self.assertEqual(record["side"], entry["side"])

    def test_a_cpu_cost_per_message_is_a_regression(self):
        completed = self.compare(self.out)
        self.assertEqual(completed.returncode, 1, completed.stdout + completed.stderr)
        self.assertIn("throughput", completed.stdout.splitlines()[0])
        self.assertIn("A/A noise", completed.stdout)

    def test_the_same_build_twice_is_no_regression(self):
        aa = os.path.join(self.tmp.name, "aa")
        shutil.copytree(self.out, aa)
        manifest = self.manifest()
        manifest["cells"] = [c for c in manifest["cells"] if c["side"] != "B"]
        del manifest["sides"]["B"]
        with open(os.path.join(aa, "manifest.json"), "w") as f:
            json.dump(manifest, f)
        completed = self.compare(aa)  # A against A2
        self.assertIn(completed.returncode, (0, 3), completed.stdout + completed.stderr)


if __name__ == "__main__":
    unittest.main()
