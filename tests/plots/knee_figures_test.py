#!/usr/bin/python3
"""The capacity sweep's figures and report table, from cell records and a manifest built
here: the capacity at the latency objective per engine (median and bracket across
repetitions) in the markdown and HTML tables and as bars with the bracket as error bar; the
latency-vs-rate figure with x as a fraction of each engine's capacity and in msgs/s, three
percentiles, invalid points ringed by reason, and tick labels that do not overlap. Exits 77
(ctest: skipped) when this Python has no matplotlib.

    knee_figures_test.py SOURCE_DIR
"""
import json
import os
import sys
import tempfile
import unittest

import matplotlib_main
import result_set_files

SOURCE_DIR = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1 else
                             os.path.join(os.path.dirname(__file__), "..", ".."))
ENGINES = [{"name": "select", "serves": "streams", "transports": ["tcp"], "concurrency": "multiplexed"},
           {"name": "epoll", "serves": "streams", "transports": ["tcp"], "concurrency": "multiplexed"}]
CAPACITY = {"select": 60000.0, "epoll": 90000.0}
FRACTIONS = [0.1, 0.2, 0.4, 0.7, 1.0, 1.2]
CPU_REASON = "generator thread 0 used 97% of a core, over --max-cpu 90%"


def record(record_id, cell, msgs_per_s, p99_us, invalid_reasons=()):
    latency = {"p50_us": p99_us / 4, "p99_us": p99_us, "p99_9_us": p99_us * 2}
    return {"schema": "echolab.bench-cell/1", "id": record_id, "cell": cell, "status": "ok",
            "loadgen": {"valid": not invalid_reasons, "invalid_reasons": list(invalid_reasons),
                        "throughput": {"msgs_per_s": msgs_per_s}, "latency": {"corrected": latency}}}


def base_cell(engine, repetition):
    return {"engine": engine, "transport": "tcp", "protocol": "framed", "connections": 16, "size": "64",
            "work": "none", "workers": 4, "pipeline": 1, "server_args": "", "repetition": repetition}


def plan_records(engine, repetition):
    """A capacity run, then the sweep: p99 flat below the capacity and steep past it, the
    generator out of CPU at 120%."""
    plan = f"{engine}_tcp_open_c16_s64_knee_slo-p99-1000us"
    capacity_id = f"{plan}_capacity_r{repetition}"
    capacity = CAPACITY[engine]
    records = [record(capacity_id, dict(base_cell(engine, repetition), mode="closed", rate=None,
                                        knee={"role": "capacity", "plan": plan}), capacity, 300.0)]
    for fraction in FRACTIONS:
        rate = round(fraction * capacity)
        link = {"role": "sweep", "plan": plan, "capacity_of": f"{plan}_capacity_r0",
                "capacity_msgs_per_s": capacity, "fraction": fraction}
        records.append(record(f"{plan}_f{fraction:g}_r{repetition}",
                              dict(base_cell(engine, repetition), mode="open", rate=rate, knee=link),
                              min(rate, capacity), 80.0 if fraction < 1 else 5000.0,
                              [CPU_REASON] if fraction > 1 else []))
    return plan, records


def summary(engine, repetition, interval, closed_loop, failed_below=()):
    plan = f"{engine}_tcp_open_c16_s64_knee_slo-p99-1000us"
    steps = [{"id": f"{plan}_slo1_r{repetition}", "rate": interval[1], "passed": False, "why": "p99 over"},
             {"id": f"{plan}_slo2_r{repetition}", "rate": interval[0], "passed": True, "why": "p99 within"}]
    return {"plan": plan, "engine": engine, "server_args": "", "connections": 16, "repetition": repetition,
            "capacity": {"id": f"{plan}_capacity_r{repetition}", "msgs_per_s": closed_loop, "valid": True},
            "sweep_capacity_of": f"{plan}_capacity_r0",
            "slo": {"percentile": 99, "max_us": 1000, "interval_msgs_per_s": interval, "stopped": "steps",
                    "failed_below_msgs_per_s": list(failed_below), "seeded_from_sweep": [], "steps": steps}}


def write_result_set(folder):
    records = plan_records("epoll", 0)[1] + plan_records("epoll", 1)[1] + plan_records("select", 0)[1]
    knee = [summary("epoll", 0, [80000, 86000], 90000.0), summary("epoll", 1, [82000, 95000], 92000.0, failed_below=[9000]),
            summary("select", 0, [None, 6000], 60000.0)]
    result_set_files.write_result_set(folder, records, "knee", engines=ENGINES, knee=knee)


class KneeFigures(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, os.path.join(SOURCE_DIR, "plots"))
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from echolab_plot import draw, figures_latency, report, results, style
        cls.plt, cls.draw, cls.figures, cls.report, cls.style = plt, draw, figures_latency, report, style
        cls.scratch = tempfile.TemporaryDirectory(prefix="echolab-knee-figures-")
        write_result_set(cls.scratch.name)
        cls.results = results.ResultSet(cls.scratch.name)
        style.use_engine_order(cls.results.engine_order)

    @classmethod
    def tearDownClass(cls):
        cls.scratch.cleanup()

    def tearDown(self):
        self.plt.close("all")

    def test_capacity_at_the_objective_is_the_median_within_the_bracket_of_all_repetitions(self):
        found = {entry.engine: entry for entry in self.results.slo_capacities()}
        self.assertEqual(set(found), {"epoll", "select"})
        epoll, select = found["epoll"], found["select"]
        self.assertEqual((epoll.rate, epoll.interval, epoll.closed_loop_rate), (81000, (80000, 95000), 91000))
        self.assertEqual(epoll.objective, "p99 ≤ 1000 µs")
        self.assertEqual(epoll.steps, 4)
        self.assertEqual((select.rate, select.interval), (0, (0, 6000)))

    def test_capacity_runs_and_search_steps_stay_out_of_the_other_figures(self):
        roles = {c.knee.get("role") for c in self.results.measured()}
        self.assertEqual(roles, {"sweep"})
        self.assertIn("capacity", {c.knee.get("role") for c in self.results.conditions})

    def test_markdown_and_html_tables(self):
        text = self.report.markdown(self.results)
        self.assertIn("**Capacity at the latency objective.**", text)
        self.assertIn("| select | 16 | p99 ≤ 1000 µs | 0 | < 6,000 | 60,000 | 0% | – | 2 | steps |", text)
        # A repetition that failed at 9,000, under its passing band, says so.
        self.assertIn("| epoll | 16 | p99 ≤ 1000 µs | 81,000 | 80,000 – 95,000 | 91,000 | 89% | 9,000 | 4 | steps |",
                      text)
        self.assertLess(text.index("| select | 16"), text.index("| epoll | 16"))  # registry order
        page = self.report.render(self.results, [])
        self.assertIn('<h2 id="slo-capacity-table">Capacity at the latency objective</h2>', page)
        self.assertIn('<td>epoll</td><td>16</td><td>p99 ≤ 1000 µs</td><td class="n">81,000</td>'
                      '<td class="n">80,000 – 95,000</td>', page)

    def test_no_table_without_a_search(self):
        with tempfile.TemporaryDirectory() as scratch:
            write_result_set(scratch)
            path = os.path.join(scratch, "manifest.json")
            with open(path) as f:
                manifest = json.load(f)
            manifest.pop("knee")
            with open(path, "w") as f:
                json.dump(manifest, f)
            from echolab_plot import figure, results
            result_set = results.ResultSet(scratch)
            self.assertNotIn("Capacity at the latency objective", self.report.markdown(result_set))
            with self.assertRaises(figure.NoData):
                self.figures.slo_capacity(result_set)

    def test_bars_with_the_bracket_as_error_bar(self):
        fig, caption = self.figures.slo_capacity(self.results)
        ax = fig.axes[0]
        self.assertEqual([t.get_text() for t in ax.get_xticklabels()], ["select", "epoll"])
        self.assertEqual([patch.get_height() for patch in ax.patches], [0, 81000])
        bars = [c for c in ax.containers if c.__class__.__name__ == "ErrorbarContainer"]
        segments = [c.lines[2][0].get_segments()[0] for c in bars]
        self.assertEqual([(s[0][1], s[1][1]) for s in segments], [(0, 6000), (80000, 95000)])
        self.assertEqual([t.get_text() for t in ax.texts], ["< 6k", "80k–95k"])
        self.assertIn("epoll: 4 search runs, stopped by steps", caption)

    def test_latency_vs_rate_has_a_fraction_and_an_absolute_column(self):
        fig, caption = self.figures.latency_vs_rate(self.results)
        self.assertEqual(len(fig.axes), 8)
        fraction_axes, absolute_axes = fig.axes[0::2], fig.axes[1::2]
        for ax in fig.axes:
            self.assertEqual(ax.get_xscale(), "log")
        for ax in fig.axes[:6]:
            self.assertEqual(ax.get_yscale(), "log")
        self.assertEqual([ax.get_ylabel() for ax in fraction_axes[:3]],
                         ["p50 latency, µs (log)", "p99 latency, µs (log)", "p99.9 latency, µs (log)"])
        self.assertIn("fraction of the engine's closed-loop capacity", fraction_axes[-1].get_xlabel())
        self.assertIn("msgs/s", absolute_axes[-1].get_xlabel())
        epoll_line = next(c for c in fraction_axes[1].containers if c.get_label() == "epoll")
        self.assertEqual(list(epoll_line.lines[0].get_xdata()), FRACTIONS)
        labels = {line.get_label() for line in fraction_axes[1].get_lines()}
        self.assertIn("invalid: generator CPU > --max-cpu", labels)
        self.assertIn("Left: the rate as a fraction", caption)

    def test_tick_labels_do_not_overlap(self):
        fig, _ = self.figures.latency_vs_rate(self.results)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        for index, ax in enumerate(fig.axes):
            low, high = ax.get_xlim()  # matplotlib keeps labels for ticks outside the view too
            boxes = [label.get_window_extent(renderer) for label in ax.get_xticklabels()
                     if label.get_visible() and label.get_text() and low <= label.get_position()[0] <= high]
            self.assertGreaterEqual(len(boxes), 2, f"axes {index}")
            self.assertLessEqual(len(boxes), 7, f"axes {index}")
            for first, second in zip(boxes, boxes[1:]):
                self.assertFalse(first.overlaps(second), f"axes {index}: {first} overlaps {second}")
        low, high = fig.axes[0].get_xlim()
        percent = [label.get_text() for label in fig.axes[0].get_xticklabels() if low <= label.get_position()[0] <= high]
        self.assertEqual(percent[:2] + percent[-2:], ["10%", "20%", "50%", "100%"])

    def test_reasons_have_their_own_rings(self):
        kinds = self.draw.invalid_kinds([CPU_REASON, "generator send lag p99 3 ms is over --max-send-lag 1 ms",
                                         "something new"])
        self.assertEqual([label for label, _ in kinds], ["generator CPU > --max-cpu", "send lag > --max-send-lag",
                                                          "other (see the report)"])
        self.assertEqual(len({marker for _, marker in kinds}), 3)


if __name__ == "__main__":
    matplotlib_main.main()
