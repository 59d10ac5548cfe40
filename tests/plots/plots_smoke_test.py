#!/usr/bin/python3
"""echolab-plot on the committed small result set: every figure is drawn as a real PNG and a
real SVG, report.html shows them all, and what cannot be drawn is skipped with a note, never a
crash. Exits 77 (ctest: skipped) when this Python has no matplotlib.

    plots_smoke_test.py SOURCE_DIR
"""
import glob
import html.parser
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ElementTree

import matplotlib_main

SOURCE_DIR = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else
                             os.path.join(os.path.dirname(__file__), "..", ".."))
PLOT = os.path.join(SOURCE_DIR, "plots", "echolab-plot")
RESULTS = os.path.join(SOURCE_DIR, "tests", "data", "small-results")
FIGURES = ["throughput_vs_connections", "throughput_p99_vs_connections", "latency_spectrum", "latency_vs_rate", "connection_setup_rate",
           "server_cost", "service_cost", "datagram_load", "throughput_p99_vs_generators"]
# Figures the small result set has no data for: a capacity search at a latency objective
# (knee_figures_test.py draws it from records of its own).
NOT_IN_SMALL_SET = ["slo_capacity"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_plot(*args, python_prelude=None):
    """echolab-plot under this interpreter (the one the test found matplotlib in)."""
    if python_prelude is None:
        command = [sys.executable, PLOT, *args]
    else:  # run the script after `python_prelude`, e.g. to hide a module
        command = [sys.executable, "-c", f"{python_prelude}; import runpy, sys; sys.argv = {[PLOT, *args]!r}; "
                                         f"runpy.run_path({PLOT!r}, run_name='__main__')"]
    return subprocess.run(command, capture_output=True, text=True, timeout=100)


class References(html.parser.HTMLParser):
    """The files report.html points at (img src, a href)."""

    def __init__(self):
        super().__init__()
        self.files = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if (tag, name) in (("img", "src"), ("a", "href")) and value and not value.startswith("#"):
                self.files.add(value)


def png_size(path):
    """(width, height) from the IHDR chunk, after checking the signature."""
    with open(path, "rb") as f:
        head = f.read(24)
    if not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise AssertionError(f"{path} is not a PNG")
    return struct.unpack(">II", head[16:24])


def copy_results(target, keep=lambda cell_id: True, edit=None):
    """A copy of the small result set with only the cells `keep` accepts, each passed through
    `edit(record)` if given."""
    os.makedirs(os.path.join(target, "cells"))
    with open(os.path.join(RESULTS, "manifest.json")) as f:
        manifest = json.load(f)
    manifest["cells"] = [entry for entry in manifest["cells"] if keep(entry["id"])]
    for entry in manifest["cells"]:
        with open(os.path.join(RESULTS, entry["file"])) as f:
            record = json.load(f)
        with open(os.path.join(target, entry["file"]), "w") as f:
            json.dump(edit(record) if edit else record, f)
    with open(os.path.join(target, "manifest.json"), "w") as f:
        json.dump(manifest, f)


class FullResultSet(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="echolab-plots-")
        cls.plot_run = run_plot(RESULTS, "--out", cls.out, "--markdown", os.path.join(cls.out, "cells.md"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, ignore_errors=True)

    def test_exits_zero_without_complaint(self):
        self.assertEqual(self.plot_run.returncode, 0, self.plot_run.stderr)
        self.assertEqual(self.plot_run.stderr, "")

    def test_every_figure_is_a_real_png_and_svg(self):
        for name in FIGURES:
            with self.subTest(figure=name):
                png, svg = (os.path.join(self.out, f"{name}.{ext}") for ext in ("png", "svg"))
                width, height = png_size(png)
                self.assertGreater(width, 400)
                self.assertGreater(height, 300)
                self.assertGreater(os.path.getsize(svg), 0)
                root = ElementTree.parse(svg).getroot()
                self.assertEqual(root.tag, "{http://www.w3.org/2000/svg}svg")

    def test_report_references_every_figure_and_nothing_missing(self):
        with open(os.path.join(self.out, "report.html"), encoding="utf-8") as f:
            text = f.read()
        parser = References()
        parser.feed(text)
        for name in FIGURES:
            self.assertIn(f"{name}.png", parser.files)
            self.assertIn(f"{name}.svg", parser.files)
        for reference in parser.files:
            self.assertTrue(os.path.isfile(os.path.join(self.out, reference)), reference)
        self.assertEqual(text.count("Not drawn"), len(NOT_IN_SMALL_SET))
        self.assertIn("Not drawn: no capacity search at a latency objective", text)

    def test_report_table_has_every_cell(self):
        with open(os.path.join(self.out, "report.html"), encoding="utf-8") as f:
            text = f.read()
        cell_ids = {os.path.basename(p)[:-5].rsplit("_r", 1)[0]
                    for p in glob.glob(os.path.join(RESULTS, "cells", "*.json"))}
        for cell_id in cell_ids:
            self.assertIn(f"<td>{cell_id}</td>", text)
        self.assertIn("sockperf", text)

    def test_markdown_table_has_every_cell_with_its_medians(self):
        with open(os.path.join(self.out, "cells.md"), encoding="utf-8") as f:
            lines = f.read().splitlines()
        heading = [h.strip() for h in lines[0].strip("|").split("|")]
        self.assertEqual(heading[:3], ["cell", "reps ok", "msgs/s"])
        rows = {line.split("|")[1].strip().strip("`"): line for line in lines[2:]}
        cell_ids = {os.path.basename(p)[:-5].rsplit("_r", 1)[0]
                    for p in glob.glob(os.path.join(RESULTS, "cells", "*.json"))}
        for cell_id in cell_ids:
            self.assertIn(cell_id, rows)
            self.assertEqual(rows[cell_id].count("|"), len(heading) + 1, rows[cell_id])

    def test_default_output_directory_is_results_figures(self):
        with tempfile.TemporaryDirectory() as scratch:
            copy_results(os.path.join(scratch, "set"), keep=lambda i: "_closed_" in i and "tcp" in i)
            run = run_plot(os.path.join(scratch, "set"), "--quiet")
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertEqual(run.stdout, "")
            self.assertTrue(os.path.isfile(os.path.join(scratch, "set", "figures", "report.html")))


class PartialResultSets(unittest.TestCase):
    def test_missing_families_are_skipped_with_a_note(self):
        with tempfile.TemporaryDirectory() as scratch:
            results, out = os.path.join(scratch, "set"), os.path.join(scratch, "out")
            copy_results(results, keep=lambda i: "_connect_" in i)  # connect mode only
            run = run_plot(results, "--out", out)
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertTrue(os.path.isfile(os.path.join(out, "connection_setup_rate.png")))
            self.assertFalse(os.path.exists(os.path.join(out, "latency_spectrum.png")))
            with open(os.path.join(out, "report.html"), encoding="utf-8") as f:
                report = f.read()
            self.assertEqual(report.count("Not drawn"), len(FIGURES) - 1 + len(NOT_IN_SMALL_SET))

    def test_missing_keys_and_failed_cells_do_not_crash(self):
        def damage(record):
            if record["id"].startswith("select_tcp_closed_c8"):
                record["loadgen"].pop("histograms", None)  # the spectrum falls back to summaries
                record["loadgen"].pop("throughput", None)
            if record["id"].startswith("fork_tcp_closed_c1"):
                record.update(status="failed", reason="server did not start: test")
                record.pop("loadgen", None)
            return record

        with tempfile.TemporaryDirectory() as scratch:
            results, out = os.path.join(scratch, "set"), os.path.join(scratch, "out")
            copy_results(results, edit=damage)
            run = run_plot(results, "--out", out)
            self.assertEqual(run.returncode, 0, run.stderr)
            with open(os.path.join(out, "report.html"), encoding="utf-8") as f:
                report = f.read()
            self.assertIn("server did not start: test", report)
            self.assertTrue(os.path.isfile(os.path.join(out, "latency_spectrum.png")))
            self.assertIn("Drawn from summary percentiles only (no histogram): select", report)


class Errors(unittest.TestCase):
    def test_bad_directory_is_one_line_and_exit_2(self):
        with tempfile.TemporaryDirectory() as scratch:
            for target in (os.path.join(scratch, "missing"), scratch):
                run = run_plot(target)
                self.assertEqual(run.returncode, 2, run.stderr)
                self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)
                self.assertTrue(run.stderr.startswith("echolab-plot: "), run.stderr)

    def test_missing_matplotlib_is_one_line_and_exit_2(self):
        run = run_plot(RESULTS, "--out", "/nonexistent", python_prelude="import sys; sys.modules['matplotlib'] = None")
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)
        self.assertIn("install python3-matplotlib", run.stderr)

    def test_script_runs_under_debians_python(self):
        with open(PLOT) as f:
            self.assertEqual(f.readline().strip(), "#!/usr/bin/python3")
        self.assertTrue(os.access(PLOT, os.X_OK))


class ConnectionSweep(unittest.TestCase):
    """Throughput and p99 vs connections: every engine drawn, and a red ✕ with a label where a
    cell failed: on the point when the client counted errors, at the bottom when it did not run."""

    SWEEP = re.compile(r"^(select|thread)_tcp_closed_c(1|8)_s64_r\d$")
    REASON = "RLIMIT_NOFILE hard limit 4096 is below the 5064 descriptors that 5000 connections need"

    @classmethod
    def damage(cls, record):
        if record["id"].startswith("thread_tcp_closed_c8"):
            record.update(status="failed", reason=cls.REASON)
            record.pop("loadgen", None)
            record.pop("server", None)
        if record["id"].startswith("select_tcp_closed_c8"):
            record["loadgen"]["errors"].update(total=500, connect_refused=500)
        if record.get("server"):
            record["server"]["memory_per_connection"] = {"rss_added_bytes": 2048}
        return record

    def test_failures_are_marked_where_they_happened(self):
        sys.path.insert(0, os.path.join(SOURCE_DIR, "plots"))
        import matplotlib
        matplotlib.use("Agg")
        from echolab_plot import figures_connections, results, style
        with tempfile.TemporaryDirectory() as scratch:
            copy_results(scratch, keep=lambda i: bool(self.SWEEP.match(i)), edit=self.damage)
            result_set = results.ResultSet(scratch)
            style.use_engine_order(result_set.engine_order)
            figure, caption = figures_connections.throughput_and_p99_vs_connections(result_set)
            run = run_plot(scratch, "--out", os.path.join(scratch, "out"))
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("throughput_p99_vs_connections.png", run.stdout)
        rate_ax, p99_ax = figure.axes[:2]
        self.assertEqual(rate_ax.get_xscale(), "log")
        self.assertEqual(p99_ax.get_yscale(), "log")
        for ax in (rate_ax, p99_ax):
            labels = [text.get_text() for text in ax.texts]
            self.assertIn("select: 500 errors (connect refused)", labels)
            self.assertTrue(any(label.startswith("thread: RLIMIT_NOFILE hard limit 4096") for label in labels),
                            labels)
            lines = {line.get_label(): line for line in ax.get_lines()}
            self.assertIn(figures_connections.FAILED_LABEL, lines)
            self.assertIn(figures_connections.ERRORS_LABEL, lines)
            self.assertEqual(list(lines[figures_connections.ERRORS_LABEL].get_xdata()), [8])
            self.assertEqual(list(lines[figures_connections.FAILED_LABEL].get_xdata()), [8])
        # Both engines are drawn, thread through its one measured point; the runner's memory
        # per connection (2 KiB in every cell here) gets a panel of its own.
        self.assertEqual({container.get_label() for container in rate_ax.containers}, {"select", "thread"})
        self.assertEqual(len(figure.axes), 3)
        # errorbar() labels its container; the container's first line is the one through the medians.
        memory = {container.get_label(): list(container.lines[0].get_ydata())
                  for container in figure.axes[2].containers}
        self.assertEqual(memory["select"], [2.0, 2.0])
        self.assertEqual(memory["thread"], [2.0])
        self.assertIn("✕", caption)

    def test_one_connection_count_is_not_a_sweep(self):
        sys.path.insert(0, os.path.join(SOURCE_DIR, "plots"))
        import matplotlib
        matplotlib.use("Agg")
        from echolab_plot import figure as figure_mod, figures_connections, results
        with tempfile.TemporaryDirectory() as scratch:
            copy_results(scratch, keep=lambda i: i.startswith("select_tcp_closed_c8_s64_r"))
            with self.assertRaises(figure_mod.NoData):
                figures_connections.throughput_and_p99_vs_connections(results.ResultSet(scratch))


class EngineVariants(unittest.TestCase):
    """A cell with server options of its own ("prefork --accept-lock") is a series of its own,
    drawn right after its engine."""

    def test_variant_is_its_own_series_next_to_its_engine(self):
        sys.path.insert(0, os.path.join(SOURCE_DIR, "plots"))
        import matplotlib
        matplotlib.use("Agg")
        from echolab_plot import results, style
        plain = results.Condition("a", {"engine": "prefork", "server_args": "", "x": 1})
        locked = results.Condition("b", {"engine": "prefork", "server_args": "--accept-lock", "x": 1})
        self.assertEqual(plain.engine, "prefork")
        self.assertEqual(locked.engine, "prefork --accept-lock")
        self.assertEqual(set(results.by_engine([plain, locked], "x")),
                         {"prefork", "prefork --accept-lock"})
        style.use_engine_order(["iterative", "prefork", "select"])
        self.assertEqual(style.ordered(["select", "prefork --accept-lock", "prefork", "iterative"]),
                         ["iterative", "prefork", "prefork --accept-lock", "select"])


if __name__ == "__main__":
    matplotlib_main.main()
