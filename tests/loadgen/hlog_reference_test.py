#!/usr/bin/python3
"""echolab-loadgen --hlog read back by HdrHistogram's own HistogramLogProcessor (Java):

- a short open-mode run writes --json, --hgrm and --hlog; for each tag (corrected,
  uncorrected, send_lag) the processor's total count equals the JSON's count, and its total
  percentiles (µs, -outputValueUnitRatio 1000) equal the JSON's to the log's precision (the
  interval histograms have 2 significant digits: a value is at most 1/128 above the exact one);
  per interval, the corrected count and p50 equal the JSON time series exactly (same layout);
- merge --hlog (of it and a second generator's result) writes the merged corrected intervals,
  read back the same way;
- merge of the two generators' logs writes one log the processor reads, whose total count per
  tag (corrected, uncorrected, send_lag) is the sum of the two logs' and of the two JSON
  results', in intervals aligned on time (not one log after the other);
- --hlog naming the --json or --hgrm file, or an unwritable place, is one line and exit 2, as
  are merge inputs of neither kind or of both kinds, --json from logs, and a damaged log line.

    hlog_reference_test.py SERVER_BINARY LOADGEN_BINARY [HDRHISTOGRAM_JAR]
Skips the reference checks when java or the HdrHistogram jar (libhdrhistogram-java) is missing.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

from echo_server import EchoServer

SERVER = sys.argv.pop(1) if len(sys.argv) > 2 else "build/ci/servers/echolab-server"
LOADGEN = sys.argv.pop(1) if len(sys.argv) > 1 else "build/ci/loadgen/echolab-loadgen"
JAR = sys.argv.pop(1) if len(sys.argv) > 1 else "/usr/share/java/hdrhistogram.jar"
PERCENTILES = ["p50_us", "p90_us", "p99_us", "p99_9_us", "p99_99_us", "max_us"]  # the T: columns
TOTAL = re.compile(r"T:(\d+) \(\s*" + r"\s+".join([r"([\d.]+)"] * 6) + r"\s*\)")
INTERVAL = re.compile(r"^([\d.]+): I:(\d+) \(\s*([\d.]+)\s")


def reference_missing():
    if not shutil.which("java"):
        return "java is not installed (default-jre-headless)"
    if not os.path.exists(JAR):
        return f"{JAR} is missing (libhdrhistogram-java)"
    return None


def loadgen(*args, timeout=60):
    return subprocess.run([LOADGEN, *args], capture_output=True, text=True, timeout=timeout)


def processor(hlog, tag, out_prefix):
    """HistogramLogProcessor's interval lines (µs) for `tag`; its .hgrm lands beside."""
    run = subprocess.run(["java", "-cp", JAR, "org.HdrHistogram.HistogramLogProcessor", "-i", hlog,
                          "-tag", tag, "-outputValueUnitRatio", "1000", "-o", out_prefix],
                         capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        raise AssertionError(f"HistogramLogProcessor failed on {tag}: {run.stderr}")
    with open(out_prefix) as f:
        return f.read().splitlines()


class Reference(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        reason = reference_missing()
        if reason:
            raise unittest.SkipTest(reason)
        cls.scratch = tempfile.TemporaryDirectory()
        d = cls.scratch.name
        cls.json_path, cls.hlog = os.path.join(d, "r.json"), os.path.join(d, "r.hlog")
        cls.other_json, cls.other_hlog = os.path.join(d, "other.json"), os.path.join(d, "other.hlog")
        common = ["--mode", "open", "--rate", "3000", "-c", "4", "--warmup", "0.2s", "--duration", "1.5s",
                  "--interval", "0.5s", "--quiet", "--no-status"]
        with EchoServer(SERVER, "epoll") as server:
            # A second generator at the same time, for merge (it needs the windows to overlap).
            other = subprocess.Popen([LOADGEN, "--target", server.address, *common, "--json", cls.other_json,
                                      "--hlog", cls.other_hlog],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            try:
                run = loadgen("--target", server.address, *common, "--json", cls.json_path,
                              "--hgrm", os.path.join(d, "r.hgrm"), "--hlog", cls.hlog)
                _, other_err = other.communicate(timeout=60)
            finally:
                if other.poll() is None:
                    other.kill()
                    other.wait()
        if run.returncode != 0 or other.returncode != 0:
            raise AssertionError(f"loadgen failed: {run.stderr} {other_err}")
        with open(cls.json_path) as f:
            cls.result = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.scratch.cleanup()

    def total_count(self, lines):
        match = TOTAL.search(lines[-1])
        self.assertIsNotNone(match, lines[-1])
        return int(match.group(1))

    def check_totals(self, lines, summary):
        match = TOTAL.search(lines[-1])
        self.assertIsNotNone(match, lines[-1])
        self.assertEqual(int(match.group(1)), summary["count"])
        self.assertGreater(summary["count"], 0)
        for i, key in enumerate(PERCENTILES):
            theirs, ours = float(match.group(i + 2)), summary[key]
            # Both are highest-equivalent values of the bucket holding the same sample: ours
            # within 1/1024 above it, the log's within 1/128; printed to 0.001 µs.
            self.assertLessEqual(abs(theirs - ours), max(theirs, ours) / 128 + 0.002,
                                 f"{key}: processor {theirs} µs, echolab {ours} µs")

    def test_every_tag_matches_the_json(self):
        for tag in ("corrected", "uncorrected", "send_lag"):
            with self.subTest(tag=tag):
                lines = processor(self.hlog, tag, os.path.join(self.scratch.name, tag))
                self.check_totals(lines, self.result["latency"][tag])

    def test_corrected_intervals_match_the_time_series_exactly(self):
        lines = processor(self.hlog, "corrected", os.path.join(self.scratch.name, "intervals"))
        rows = [INTERVAL.match(line) for line in lines]
        rows = [m for m in rows if m]
        series = self.result["intervals"]
        self.assertEqual(len(rows), len(series))
        for row, interval in zip(rows, series):
            self.assertAlmostEqual(float(row.group(1)), interval["start_s"] + interval["length_s"], places=3)
            self.assertEqual(int(row.group(2)), interval["messages"])
            self.assertAlmostEqual(float(row.group(3)), interval["p50_us"], places=3)

    def test_merge_writes_the_corrected_intervals(self):
        merged = os.path.join(self.scratch.name, "merged.hlog")
        merged_json = os.path.join(self.scratch.name, "merged.json")
        run = loadgen("merge", self.json_path, self.other_json, "--json", merged_json, "--hlog", merged,
                      "--quiet")
        self.assertEqual(run.returncode, 0, run.stderr)
        with open(merged_json) as f:
            result = json.load(f)
        lines = processor(merged, "corrected", os.path.join(self.scratch.name, "merged"))
        self.check_totals(lines, result["latency"]["corrected"])
        with open(self.other_json) as f:
            other = json.load(f)
        self.assertEqual(result["latency"]["corrected"]["count"],
                         self.result["latency"]["corrected"]["count"] + other["latency"]["corrected"]["count"])
        # The JSON keeps only the corrected interval histograms: the merged log has no other tag.
        with open(merged) as f:
            self.assertEqual({line.split(",")[0] for line in f if line.startswith("Tag=")}, {"Tag=corrected"})

    def test_merge_of_logs_adds_every_tag(self):
        merged = os.path.join(self.scratch.name, "merged-logs.hlog")
        run = loadgen("merge", self.hlog, self.other_hlog, "--hlog", merged, "--quiet")
        self.assertEqual(run.returncode, 0, run.stderr)
        with open(self.other_json) as f:
            other = json.load(f)
        for tag in ("corrected", "uncorrected", "send_lag"):
            with self.subTest(tag=tag):
                out = os.path.join(self.scratch.name, "merged-logs-" + tag)
                parts = [processor(log, tag, f"{out}-{i}") for i, log in enumerate((self.hlog, self.other_hlog))]
                lines = processor(merged, tag, out)
                counts = [self.total_count(part) for part in parts]
                self.assertGreater(min(counts), 0)
                self.assertEqual(self.total_count(lines), sum(counts))
                self.assertEqual(sum(counts), self.result["latency"][tag]["count"] + other["latency"][tag]["count"])
                # Aligned on time: the two runs overlap, so their intervals share slots.
                rows = [[line for line in part if INTERVAL.match(line)] for part in parts]
                merged_rows = [line for line in lines if INTERVAL.match(line)]
                self.assertLessEqual(len(merged_rows), max(len(r) for r in rows) + 1)


class Mistakes(unittest.TestCase):
    def one_line_and_exit_2(self, run):
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)
        return run.stderr

    def run_mistake(self, *args):
        return self.one_line_and_exit_2(
            loadgen("--target", "127.0.0.1:9", "--duration", "0.1s", "--quiet", "--no-status", *args))

    def test_hlog_on_the_json_or_hgrm_file_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "same")
            self.assertIn("same file", self.run_mistake("--json", path, "--hlog", path))
            self.assertIn("same file", self.run_mistake("--hgrm", path, "--hlog", "./" + os.path.relpath(path)))
            self.assertIn("same file", self.run_mistake("--json", "-", "--hlog", "/dev/stdout"))

    def test_unwritable_hlog_is_one_line(self):
        err = self.run_mistake("--hlog", "/nonexistent-dir/x.hlog")
        self.assertIn("--hlog /nonexistent-dir/x.hlog", err)

    def run_merge_mistake(self, files, *args):
        with tempfile.TemporaryDirectory() as d:
            paths = []
            for name, text in files.items():
                paths.append(os.path.join(d, name))
                with open(paths[-1], "w") as f:
                    f.write(text)
            return self.one_line_and_exit_2(loadgen("merge", *paths, "--quiet", *args))

    def test_merge_inputs_of_neither_or_both_kinds_are_one_line(self):
        header = "#[Histogram log format version 1.3]\n"
        self.assertIn("notes.txt is neither an echolab-loadgen result (JSON) nor an HdrHistogram interval log",
                      self.run_merge_mistake({"a.hlog": header, "notes.txt": "hello\n"}))
        err = self.run_merge_mistake({"a.json": "{}", "b.hlog": header})
        self.assertIn("a.json is a JSON result, ", err)
        self.assertIn("b.hlog an interval log: merge results or logs, not both", err)
        self.assertIn("--json needs JSON results",
                      self.run_merge_mistake({"a.hlog": header, "b.hlog": header}, "--json", os.devnull))
        damaged = header + "Tag=corrected,0.000,1.000,1.000,HIST*AAA\n"
        self.assertIn("a.hlog line 2: base64", self.run_merge_mistake({"a.hlog": damaged, "b.hlog": header}))


if __name__ == "__main__":
    unittest.main(verbosity=2)
