"""bench/sockperf_peer.py: its parser on sockperf 3.7's own summary (golden text), and one
tiny run end to end (skipped without sockperf): the result file has its shape and both
servers answered sockperf's client, with 1 socket and with several through a feed file."""
import importlib.util
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
SCRIPT = os.path.join(REPO, "bench", "sockperf_peer.py")

# What sockperf 3.7's ping-pong client prints at the end of a run (colours included).
GOLDEN = """sockperf: == version #3.7-no.git ==
sockperf[CLIENT] send on:sockperf: using recvfrom() to block on socket(s)
[ 0] IP = 127.0.0.1       PORT = 41234 # TCP
sockperf: Warmup stage (sending a few dummy messages)...
sockperf: Starting test...
sockperf: Test end (interrupted by timer)
sockperf: Test ended
sockperf: [Total Run] RunTime=1.450 sec; Warm up time=400 msec; SentMessages=30123; ReceivedMessages=30122
sockperf: ========= Printing statistics for Server No: 0
sockperf: [Valid Duration] RunTime=0.990 sec; SentMessages=20412; ReceivedMessages=20411
sockperf: \x1b[2;35m====> avg-latency=24.133 (std-dev=3.112)\x1b[0m
sockperf: # dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0
sockperf: Summary: Latency is 24.133 usec
sockperf: \x1b[2;35mTotal 20411 observations\x1b[0m; each percentile contains 204.11 observations
sockperf: ---> <MAX> observation =  120.230
sockperf: ---> percentile 99.999 =  110.230
sockperf: ---> percentile 99.990 =   90.004
sockperf: ---> percentile 99.900 =   60.500
sockperf: ---> percentile 99.000 =   40.120
sockperf: ---> percentile 90.000 =   30.000
sockperf: ---> percentile 75.000 =   26.000
sockperf: ---> percentile 50.000 =   23.100
sockperf: ---> percentile 25.000 =   21.000
sockperf: ---> <MIN> observation =   15.000
"""


def load_script():
    spec = importlib.util.spec_from_file_location("sockperf_peer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Parser(unittest.TestCase):
    def test_golden_summary(self):
        parsed = load_script().parse_client_output(GOLDEN)
        self.assertAlmostEqual(parsed["rate"], 20411 / 0.990)
        self.assertEqual((parsed["p50_us"], parsed["p99_us"]), (23.1, 40.12))
        self.assertEqual((parsed["sent"], parsed["received"], parsed["dropped"]), (30123, 30122, 0))

    def test_no_valid_duration_is_no_result(self):
        self.assertIsNone(load_script().parse_client_output(
            "sockperf: No messages were received from the server. Is the server down?\n"))


@unittest.skipUnless(shutil.which("sockperf"), "sockperf is not installed (apt-get install sockperf)")
class EndToEnd(unittest.TestCase):
    def test_one_round_both_sides_answer(self):
        tmp = tempfile.mkdtemp(prefix="sockperf-peer-test-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        out = os.path.join(tmp, "peer.json")
        done = subprocess.run(["/usr/bin/python3", SCRIPT, "--build-dir", BUILD_DIR, "--rounds", "1",
                               "--duration", "1", "--sockets", "1,3", "--out", out],
                              capture_output=True, text=True, timeout=90)
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(out) as f:
            result = json.load(f)
        self.assertEqual(result["benchmark"], "sockperf-peer")
        schema_check.load_validators()["host"].validate(result["context"])  # one vocabulary
        for key in ("date_utc", "command", "sockperf_version"):
            self.assertIn(key, result["context"])
        self.assertEqual([entry["sockets"] for entry in result["entries"]], [1, 3])
        for entry in result["entries"]:
            for side in ("echolab", "sockperf"):
                self.assertEqual(entry[f"{side}_valid_runs"], 1, entry["runs"][side])
                self.assertGreater(entry[f"{side}_rate_median"], 0)
            self.assertIsNotNone(entry["rate_ratio"])


if __name__ == "__main__":
    unittest.main()
