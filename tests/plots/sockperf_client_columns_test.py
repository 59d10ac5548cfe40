#!/usr/bin/python3
"""The report's "sockperf client" columns, from cell records built here: the medians across
repetitions that plots/echolab_plot/results.py reads from each record's sockperf_client, the
columns in the HTML table and the markdown only when some cell has them, and a failed side
run's error shown beside the load generator's numbers. Exits 77 (ctest: skipped) when this
Python has no matplotlib (the report's styles import it).

    sockperf_client_columns_test.py SOURCE_DIR
"""
import os
import sys
import tempfile
import unittest

import matplotlib_main
import result_set_files

SOURCE_DIR = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else
                             os.path.join(os.path.dirname(__file__), "..", ".."))
COLUMNS = ["sockperf client msgs/s", "sockperf client p50 µs", "sockperf client p99 µs"]


def record(engine, connections, repetition, msgs_per_s, p50_us, p99_us, sockperf_client=None):
    """A bench cell record with the load generator's summary numbers and, if given, a
    sockperf_client side run (a parsed summary or {"error": ...})."""
    cell = {"engine": engine, "transport": "tcp", "protocol": "framed", "mode": "closed",
            "connections": connections, "size": "64", "work": "none", "workers": 4, "pipeline": 1,
            "sockperf_client": sockperf_client is not None, "repetition": repetition}
    out = {"schema": "echolab.bench-cell/1", "id": f"{engine}_tcp_closed_c{connections}_s64_r{repetition}",
           "cell": cell, "status": "ok",
           "loadgen": {"throughput": {"msgs_per_s": msgs_per_s},
                       "latency": {"corrected": {"p50_us": p50_us, "p99_us": p99_us}}}}
    if sockperf_client is not None:
        out["sockperf_client"] = sockperf_client
    return out


def sockperf_summary(msgs_per_s, p50, p99):
    return {"messages": int(msgs_per_s / 2), "messages_per_s": msgs_per_s,
            "latency_us": {"mean": p50, "p50": p50, "p90": p99, "p99": p99, "p99.9": None, "p99.99": None},
            "sockets": 1, "message_size": 64, "note": "built by the test"}


RECORDS = [
    record("epoll", 1, 0, 10000.0, 50.0, 90.0, sockperf_summary(9000.0, 40.0, 80.0)),
    record("epoll", 1, 1, 12000.0, 60.0, 100.0, sockperf_summary(11000.0, 44.0, 84.0)),
    record("epoll", 4, 0, 30000.0, 70.0, 120.0, {"error": "sockperf is not installed"}),
    record("select", 1, 0, 9500.0, 55.0, 95.0),
]


def markdown_rows(text):
    """(headings, {cell label: [values]}) of the markdown table."""
    lines = text.splitlines()
    split = [[v.strip() for v in line.strip().strip("|").split("|")] for line in lines]
    return split[0], {row[0].strip("`"): row for row in split[2:]}


class Columns(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, os.path.join(SOURCE_DIR, "plots"))
        import matplotlib
        matplotlib.use("Agg")
        from echolab_plot import report, results
        cls.report, cls.results = report, results

    def result_set(self, records):
        scratch = tempfile.TemporaryDirectory(prefix="echolab-sockperf-columns-")
        self.addCleanup(scratch.cleanup)
        result_set_files.write_result_set(scratch.name, records, "columns")
        return self.results.ResultSet(scratch.name)

    def condition(self, result_set, label):
        return next(c for c in result_set.conditions if c.label == label)

    def test_medians_across_repetitions(self):
        result_set = self.result_set(RECORDS)
        epoll = self.condition(result_set, "epoll_tcp_closed_c1_s64")
        self.assertEqual(epoll.median("sockperf_msgs_per_s"), 10000.0)
        self.assertEqual(epoll.median("sockperf_p50_us"), 42.0)
        self.assertEqual(epoll.median("sockperf_p99_us"), 82.0)
        self.assertEqual(epoll.median("msgs_per_s"), 11000.0)  # the load generator's, untouched
        failed = self.condition(result_set, "epoll_tcp_closed_c4_s64")
        self.assertIsNone(failed.median("sockperf_msgs_per_s"))
        self.assertEqual(failed.sockperf_client_errors(), ["sockperf is not installed"])
        self.assertEqual(failed.median("msgs_per_s"), 30000.0)
        self.assertIsNone(self.condition(result_set, "select_tcp_closed_c1_s64").median("sockperf_p50_us"))

    def test_markdown_has_the_columns_and_the_error(self):
        headings, rows = markdown_rows(self.report.markdown(self.result_set(RECORDS)))
        first = headings.index(COLUMNS[0])
        self.assertEqual(headings[first:first + 3], COLUMNS)
        self.assertEqual(headings[first - 1], "peak RSS MiB")
        self.assertEqual(rows["epoll_tcp_closed_c1_s64"][first:first + 3], ["10,000", "42.0", "82.0"])
        self.assertEqual(rows["select_tcp_closed_c1_s64"][first:first + 3], ["–", "–", "–"])
        self.assertEqual(rows["epoll_tcp_closed_c4_s64"][first:first + 3], ["–", "–", "–"])
        self.assertIn("sockperf client: sockperf is not installed", rows["epoll_tcp_closed_c4_s64"][-1])
        self.assertEqual(rows["select_tcp_closed_c1_s64"][-1], "ok")
        for row in rows.values():
            self.assertEqual(len(row), len(headings))

    def test_html_has_the_columns_and_says_the_round_trip_is_whole(self):
        page = self.report.render(self.result_set(RECORDS), [])
        for heading in COLUMNS:
            self.assertIn(f"<th>{heading}</th>", page)
        self.assertIn('<td class="n">10,000</td><td class="n">42.0</td><td class="n">82.0</td>', page)
        self.assertIn("--full-rtt", page)
        self.assertIn("sockperf client: sockperf is not installed", page)

    def test_no_columns_when_no_cell_has_a_measured_side_run(self):
        plain = [rec for rec in RECORDS if "messages" not in (rec.get("sockperf_client") or {})]
        result_set = self.result_set(plain)
        headings, _ = markdown_rows(self.report.markdown(result_set))
        page = self.report.render(result_set, [])
        for heading in COLUMNS:
            self.assertNotIn(heading, headings)
            self.assertNotIn(f"<th>{heading}</th>", page)
        self.assertNotIn("--full-rtt", page)


if __name__ == "__main__":
    matplotlib_main.main()
