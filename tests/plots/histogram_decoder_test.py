#!/usr/bin/python3
"""The Python decoder of echolab.histogram JSON (plots/echolab_plot/histogram.py) against
histograms the C++ load generator wrote: its percentiles must be the ones the C++ put in the
same result's summaries (same bucket math), and merging must be exact.

    histogram_decoder_test.py SOURCE_DIR    (standard library only: no matplotlib needed)
"""
import glob
import json
import os
import sys
import unittest

SOURCE_DIR = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else
                             os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SOURCE_DIR, "plots"))
from echolab_plot import histogram  # noqa: E402

RESULTS = os.path.join(SOURCE_DIR, "tests", "data", "small-results")
FULL_CELL = os.path.join(RESULTS, "cells", "select_tcp_closed_c8_s64_r0.json")
SUMMARY_PERCENTILES = {"p50_us": 50.0, "p90_us": 90.0, "p99_us": 99.0, "p99_9_us": 99.9, "p99_99_us": 99.99}


def load(path):
    with open(path) as f:
        return json.load(f)


def histogram_cells():
    """(file name, loadgen result) of every committed cell with a corrected histogram."""
    cells = []
    for path in sorted(glob.glob(os.path.join(RESULTS, "cells", "*.json"))):
        loadgen = load(path).get("loadgen") or {}
        if "corrected" in (loadgen.get("histograms") or {}):
            cells.append((os.path.basename(path), loadgen))
    return cells


class AgreesWithTheCppSummaries(unittest.TestCase):
    def check_against_summary(self, document, summary, where):
        decoded = histogram.Histogram.from_json(document)
        self.assertEqual(decoded.count, summary["count"], where)
        self.assertEqual(decoded.below_range, summary["below_range"], where)
        self.assertEqual(decoded.above_range, summary["above_range"], where)
        self.assertEqual(decoded.min / 1000.0, summary["min_us"], where)
        self.assertEqual(decoded.max / 1000.0, summary["max_us"], where)
        # Mid-point mean, summed in the same order as the C++: equal but for rounding.
        self.assertAlmostEqual(decoded.mean() / 1000.0, summary["mean_us"], delta=1e-9 * summary["mean_us"] + 1e-9)
        half_count = decoded.layout.half_count
        for key, percentile in SUMMARY_PERCENTILES.items():
            if key not in summary:
                continue
            value_us = decoded.value_at_percentile(percentile) / 1000.0
            # The same bucket arithmetic gives the same value to the nanosecond ...
            self.assertEqual(value_us, summary[key], f"{where} {key}")
            # ... which is in any case within the histogram's precision of the C++ one.
            self.assertLessEqual(abs(value_us - summary[key]), summary[key] / half_count, f"{where} {key}")

    def test_every_corrected_histogram_of_the_result_set(self):
        cells = histogram_cells()
        self.assertGreaterEqual(len(cells), 6, "the committed result set lost its histograms")
        for name, loadgen in cells:
            with self.subTest(cell=name):
                self.check_against_summary(loadgen["histograms"]["corrected"], loadgen["latency"]["corrected"], name)

    def test_uncorrected_and_send_lag_layouts(self):
        loadgen = load(FULL_CELL)["loadgen"]
        for which in ("uncorrected", "send_lag"):
            with self.subTest(histogram=which):
                self.check_against_summary(loadgen["histograms"][which], loadgen["latency"][which], which)

    def test_interval_histograms_two_digit_layout(self):
        loadgen = load(FULL_CELL)["loadgen"]
        self.assertTrue(loadgen["intervals"])
        for interval, document in zip(loadgen["intervals"], loadgen["histograms"]["intervals"]):
            decoded = histogram.Histogram.from_json(document)
            self.assertEqual(decoded.layout.significant_digits, 2)
            self.assertEqual(decoded.count, interval["messages"])
            self.assertEqual(decoded.value_at_percentile(50) / 1000.0, interval["p50_us"])
            self.assertEqual(decoded.value_at_percentile(99) / 1000.0, interval["p99_us"])


class Layout(unittest.TestCase):
    def test_default_latency_layout_matches_histogram_h(self):
        # loadgen/histogram.h: 1 µs .. 60 s in ns at 3 digits -> 2048 sub-buckets, a 1 ns unit
        # (values below 2048 ns exact), a counts array of ~216 KiB (27 648 uint64).
        layout = histogram.Layout(1000, 60_000_000_000, 3)
        self.assertEqual(layout.sub_bucket_count, 2048)
        self.assertEqual(layout.unit_magnitude, 0)
        self.assertEqual(layout.counts_size, 27648)
        for value in (1000, 2047):
            self.assertEqual(layout.value_from_index(value), value)
        # Past 2048 every bucket is at most value / 1024 wide.
        for index in range(2048, layout.counts_size, 997):
            low = layout.value_from_index(index)
            self.assertLessEqual(layout.bucket_width(index), low / 1024)


class Merge(unittest.TestCase):
    def repetitions(self):
        documents = [load(os.path.join(RESULTS, "cells", f"select_tcp_closed_c8_s64_r{r}.json"))
                     ["loadgen"]["histograms"]["corrected"] for r in (0, 1)]
        return [histogram.Histogram.from_json(d) for d in documents]

    def test_merge_adds_counts_exactly(self):
        first, second = self.repetitions()
        merged = histogram.merge_all([first, second])
        self.assertEqual(merged.count, first.count + second.count)
        for index in set(first.counts) | set(second.counts):
            self.assertEqual(merged.counts[index], first.counts.get(index, 0) + second.counts.get(index, 0))
        self.assertEqual(merged.min, min(first.min, second.min))
        self.assertEqual(merged.max, max(first.max, second.max))
        for percentile in (50, 99):
            values = sorted(h.value_at_percentile(percentile) for h in (first, second))
            self.assertGreaterEqual(merged.value_at_percentile(percentile), values[0])
            self.assertLessEqual(merged.value_at_percentile(percentile), values[1])

    def test_merge_refuses_different_layouts(self):
        corrected = self.repetitions()[0]
        interval = histogram.Histogram.from_json(load(FULL_CELL)["loadgen"]["histograms"]["intervals"][0])
        with self.assertRaises(histogram.HistogramFormatError):
            corrected.merged(interval)


class Spectrum(unittest.TestCase):
    def test_spectrum_is_monotonic_and_ends_at_the_max(self):
        decoded = histogram.Histogram.from_json(load(FULL_CELL)["loadgen"]["histograms"]["corrected"])
        rows = decoded.percentile_spectrum()
        self.assertEqual(rows[0][0], 0.0)
        self.assertEqual(rows[-1][0], 100.0)
        for (p0, v0), (p1, v1) in zip(rows, rows[1:]):
            self.assertLessEqual(p0, p1)
            self.assertLessEqual(v0, v1)
        last_index = max(decoded.counts)
        self.assertEqual(rows[-1][1], decoded.layout.highest_equivalent(last_index))
        self.assertGreaterEqual(rows[-1][1], decoded.max)
        # Every tick at or below 99 % agrees with value_at_percentile at that level.
        for percentile, value in rows[1:-1]:
            if percentile <= 99.0:
                self.assertEqual(value, decoded.value_at_percentile(percentile), percentile)


class RejectsBadInput(unittest.TestCase):
    def valid(self):
        return {"format": "echolab.histogram", "version": 1, "lowest": 1000, "highest": 60_000_000_000,
                "significant_digits": 3, "count": 3, "below_range": 0, "above_range": 0, "min": 1500,
                "max": 1502, "runs": [[1500, 1, 1, 1]]}

    def test_valid_document(self):
        decoded = histogram.Histogram.from_json(self.valid())
        self.assertEqual(decoded.value_at_percentile(50), 1501)

    def test_bad_documents(self):
        cases = {"format": {"format": "hdr"}, "version": {"version": 2}, "count": {"count": 4},
                 "overlap": {"runs": [[1500, 1, 1], [1501, 1]]},
                 "range": {"runs": [[27647, 1, 1, 1]]}, "layout": {"significant_digits": 9},
                 "type": {"min": "1500"}}
        for name, change in cases.items():
            with self.subTest(case=name), self.assertRaises(histogram.HistogramFormatError):
                histogram.Histogram.from_json({**self.valid(), **change})


if __name__ == "__main__":
    unittest.main(verbosity=2)
