"""Capacity sweeps and the capacity at a latency objective (bench/runner/knee.py): the spec's
checks, the sweep's rates, the bisection on synthetic measurement functions (monotone and
noisy), a plan's records and links from a synthetic server, and echolab-bench end to end on
one engine with 1 s cells and 2 search steps."""
import math
import os
import random
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_harness import REPO, ResultSetCase  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "bench"))
from runner import knee  # noqa: E402
from runner import spec as spec_mod  # noqa: E402

SWEEP = {"sweep": "capacity", "from": 0.1, "to": 1.2, "steps": 8}
SLO = {"percentile": 99, "max_us": 1000}


def plan_group(**overrides):
    group = {"engine": "epoll", "mode": "open", "connections": 16, "rate": dict(SWEEP), "slo": dict(SLO)}
    group.update(overrides)
    return {"matrix": [group]}


class SpecChecks(unittest.TestCase):
    def test_a_plan_is_accepted_with_its_defaults_and_named(self):
        cells = spec_mod.expand_cells(plan_group(rate={"sweep": "capacity"}))
        self.assertEqual(len(cells), 1)
        self.assertEqual(knee.sweep_settings(cells[0]["rate"]), {"sweep": "capacity", **knee.SWEEP_DEFAULTS})
        self.assertEqual(knee.slo_settings(cells[0]["slo"])["steps"], knee.SLO_DEFAULTS["steps"])
        self.assertEqual(spec_mod.cell_id(cells[0]), "epoll_tcp_open_c16_s64_knee_slo-p99-1000us")
        without_slo = spec_mod.expand_cells(plan_group(slo=None))[0]
        self.assertEqual(spec_mod.cell_id(without_slo), "epoll_tcp_open_c16_s64_knee")
        self.assertEqual(knee.runs_in_plan(cells[0]), 1 + 8 + 6)

    def test_bad_settings_are_one_line_spec_errors(self):
        cases = [
            (plan_group(mode="closed"), "needs mode open"),
            (plan_group(rate=5000), "slo needs \"rate\": {\"sweep\": \"capacity\"}"),
            (plan_group(rate={"sweep": "guess"}), "sweep must be \"capacity\""),
            (plan_group(rate={"sweep": "capacity", "step": 4}), "unknown keys step"),
            (plan_group(rate={"from": 0.1}), "rate needs sweep"),
            (plan_group(rate={"sweep": "capacity", "from": 1.2, "to": 0.1}), "0 < from < to <= 4"),
            (plan_group(rate={"sweep": "capacity", "steps": 1}), "steps must be an integer from 2 to 32"),
            (plan_group(rate={"sweep": "capacity", "steps": 4.5}), "steps must be an integer from 2 to 32"),
            (plan_group(slo={"percentile": 95, "max_us": 1000}), "percentile must be one of 50, 90, 99, 99.9, 99.99"),
            (plan_group(slo={"percentile": 99, "max_us": -1}), "max_us must be a positive number"),
            (plan_group(slo={"percentile": 99}), "slo needs max_us"),
            (plan_group(slo={"percentile": 99, "max_us": 1000, "steps": 0}), "steps must be an integer from 1 to 20"),
            (plan_group(slo={"percentile": 99, "max_us": 1000, "max_s": 0}), "max_s"),
            (plan_group(slo="p99<1ms"), "slo must be an object"),
            (plan_group(reference="sockperf"), "not a reference tool"),
        ]
        for spec, expected in cases:
            with self.subTest(expected=expected):
                with self.assertRaises(spec_mod.SpecError) as caught:
                    spec_mod.expand_cells(spec)
                message = str(caught.exception)
                self.assertIn(expected, message)
                self.assertTrue(message.startswith("matrix group 0: "), message)
                self.assertEqual(len(message.splitlines()), 1, message)

    def test_the_shipped_knee_spec_is_a_plan_per_engine(self):
        spec = spec_mod.load_spec("knee")
        cells = spec_mod.expand_cells(spec)
        self.assertEqual(len(cells), 5)
        self.assertTrue(all(knee.is_plan(c) and c["slo"] for c in cells))
        self.assertEqual({c["connections"] for c in cells}, {16})


class SweepExpansion(unittest.TestCase):
    def test_fractions_are_log_spaced_from_first_to_last(self):
        fractions = knee.sweep_fractions(dict(SWEEP))
        self.assertEqual(len(fractions), 8)
        self.assertAlmostEqual(fractions[0], 0.1)
        self.assertAlmostEqual(fractions[-1], 1.2)
        ratios = [b / a for a, b in zip(fractions, fractions[1:])]
        for ratio in ratios:
            self.assertAlmostEqual(ratio, (1.2 / 0.1) ** (1 / 7), places=2)

    def test_rates_are_whole_fractions_of_the_capacity(self):
        rates = knee.sweep_rates(48000.0, {"from": 0.25, "to": 1.0, "steps": 3})
        self.assertEqual(rates, [(0.25, 12000), (0.5, 24000), (1.0, 48000)])
        self.assertEqual(knee.sweep_rates(3.0, {"from": 0.1, "to": 0.2, "steps": 2}), [(0.1, 1), (0.2, 1)])


def monotone(true_rate, log):
    def measure(rate):
        log.append(rate)
        return rate <= true_rate
    return measure


class Bisection(unittest.TestCase):
    def check_bracket(self, found, true_rate, measured, tolerance=0.0):
        low, high = found["interval"]
        self.assertLess(low, high)
        self.assertLessEqual(low, true_rate * (1 + tolerance))
        self.assertGreaterEqual(high, true_rate * (1 - tolerance))
        # Both ends were measured, and the steps say what each run gave.
        self.assertIn(low, measured)
        self.assertIn(high, measured)
        self.assertEqual([rate for rate, _ in found["steps"]], measured)

    def test_monotone_brackets_the_true_rate_within_the_steps(self):
        for true_rate in (5200, 37000, 59000):
            with self.subTest(true_rate=true_rate):
                measured = []
                found = knee.search_slo_capacity(monotone(true_rate, measured), 5000, 60000, 6)
                self.assertLessEqual(len(found["steps"]), 6)
                self.check_bracket(found, true_rate, measured)
                self.assertEqual(found["stopped"], "steps")

    def test_each_step_halves_the_bracket_on_the_log_scale(self):
        measured = []
        found = knee.search_slo_capacity(monotone(37000, measured), 5000, 60000, 8)
        low, high = found["interval"]
        # Two runs find the ends; six halvings leave (60000/5000)^(1/64) of the bracket.
        self.assertLessEqual(math.log(high / low), math.log(60000 / 5000) / 2 ** 6 * 1.05)

    def test_the_sweep_seeds_the_bracket_and_a_lone_pass_above_a_failure_is_measured_again(self):
        known = [(5000, True), (10000, True), (20000, False), (40000, True), (60000, False)]
        measured = []
        found = knee.search_slo_capacity(monotone(15000, measured), 5000, 60000, 3, known=known)
        # The lone pass at 40,000 is run again, fails, and no longer counts.
        self.assertEqual(measured[0], 40000)
        self.assertTrue(all(10000 < rate < 20000 for rate in measured[1:]), measured)
        low, high = found["interval"]
        self.assertLessEqual(low, 15000)
        self.assertGreaterEqual(high, 15000)
        self.assertLess(high / low, 2 ** (1 / 4) * 1.01)
        self.assertEqual(found["failed_below"], [])

    def test_a_lone_pass_that_passes_again_is_kept(self):
        known = [(5000, False), (10000, True), (20000, False)]
        measured = []
        found = knee.search_slo_capacity(monotone(15000, measured), 5000, 60000, 2, known=known)
        self.assertEqual(measured[0], 10000)
        self.assertTrue(10000 < measured[1] < 20000, measured)
        self.assertEqual(found["interval"], [measured[1], 20000])
        self.assertEqual(found["failed_below"], [5000])

    def test_a_failure_under_a_band_of_passes_does_not_cap_it_and_is_reported(self):
        # A sweep that failed at its lowest rate (a slow wake-up of an idle machine) and
        # passed at the three above it: the capacity is above the band, not under 7,958.
        known = [(7958, False), (11349, True), (16188, True), (23088, True), (32924, False),
                 (46955, False), (66963, False), (95502, False)]
        measured = []

        def measure(rate):
            measured.append(rate)
            return rate <= 27000

        found = knee.search_slo_capacity(measure, 7958, 95502, 3, known=known)
        self.assertTrue(all(23088 < rate < 32924 for rate in measured), measured)
        low, high = found["interval"]
        self.assertLessEqual(low, 27000)
        self.assertGreater(high, 27000)
        self.assertGreaterEqual(low, 23088)
        self.assertEqual(found["failed_below"], [7958])

    def test_a_rate_that_failed_once_fails_however_often_it_passed(self):
        self.assertEqual(knee._verdicts([(100, True), (100, False), (200, True), (200, True)]),
                         {100: False, 200: True})

    def test_noisy_measurements_still_bracket_within_the_noise(self):
        true_rate, noise = 30000, 0.05
        for seed in range(20):
            with self.subTest(seed=seed):
                rng = random.Random(seed)
                measured = []

                def measure(rate):
                    measured.append(rate)
                    return rate <= true_rate * (1 + rng.uniform(-noise, noise))

                found = knee.search_slo_capacity(measure, 3000, 36000, 6)
                self.assertLessEqual(len(found["steps"]), 6)
                self.check_bracket(found, true_rate, measured, tolerance=noise)

    def test_all_passing_and_none_passing_leave_that_side_open(self):
        measured = []
        everything = knee.search_slo_capacity(monotone(10 ** 9, measured), 1000, 12000, 3)
        self.assertEqual(measured, [12000, 24000, 48000])
        self.assertEqual(everything["interval"], [48000, None])
        measured = []
        nothing = knee.search_slo_capacity(monotone(0, measured), 1000, 12000, 3)
        self.assertEqual(measured, [12000, 1000, 250])
        self.assertEqual(nothing["interval"], [None, 250])

    def test_a_sweep_that_passed_or_failed_everywhere_is_extended_not_repeated(self):
        measured = []
        found = knee.search_slo_capacity(monotone(300, measured), 1000.4, 12000.2, 1,
                                         known=[(1000, False), (12000, False)])
        self.assertEqual((measured, found["interval"]), ([250], [250, 1000]))
        measured = []
        found = knee.search_slo_capacity(monotone(10 ** 6, measured), 1000.4, 12000.2, 1,
                                         known=[(1000, True), (12000, True)])
        self.assertEqual((measured, found["interval"]), ([24000], [24000, None]))

    def test_the_search_stops_at_its_floor_instead_of_judging_a_handful_of_messages(self):
        measured = []
        nothing = knee.search_slo_capacity(monotone(0, measured), 1000, 12000, 6, floor=334)
        self.assertEqual(measured, [12000, 1000, 334])
        self.assertEqual((nothing["interval"], nothing["stopped"]), ([None, 334], "floor"))
        measured = []
        low = knee.search_slo_capacity(monotone(500, measured), 1000, 12000, 6, floor=334)
        self.assertTrue(all(rate >= 334 for rate in measured), measured)
        self.assertLessEqual(low["interval"][0], 500)
        self.assertGreater(low["interval"][1], 500)

    def test_the_time_budget_and_the_precision_stop_the_search(self):
        budget = iter([True, True, False])
        found = knee.search_slo_capacity(monotone(37000, []), 5000, 60000, 6, time_left=lambda: next(budget))
        self.assertEqual((len(found["steps"]), found["stopped"]), (2, "time"))
        found = knee.search_slo_capacity(monotone(37000, []), 5000, 60000, 20)
        self.assertEqual(found["stopped"], "precision")
        low, high = found["interval"]
        self.assertLessEqual(high / low, knee.PRECISION_RATIO)


def synthetic_record(cell, knee_p99_at):
    """The record of a server that saturates at `knee_p99_at` msgs/s: closed loop, it
    achieves that rate; open loop, p99 is 100 µs below it and grows tenfold per 10% above."""
    record = {"status": "ok", "cell": cell,
              "loadgen": {"valid": True, "invalid_reasons": [], "throughput": {}, "latency": {"corrected": {}},
                          "errors": {"total": 0}, "messages": {"received": 10 ** 6}}}
    if cell["mode"] == "closed":
        record["loadgen"]["throughput"]["msgs_per_s"] = float(knee_p99_at)
    else:
        over = max(0.0, cell["rate"] / knee_p99_at - 1.0)
        record["loadgen"]["throughput"]["msgs_per_s"] = float(min(cell["rate"], knee_p99_at))
        record["loadgen"]["latency"]["corrected"]["p99_us"] = 100.0 * 10 ** (over * 10)
        if cell["rate"] > 1.1 * knee_p99_at:
            record["loadgen"].update(valid=False, invalid_reasons=["generator sent 1 msgs/s, under 95%"])
    return record


class Plan(unittest.TestCase):
    def run_plan(self, capacity, state, repetition):
        cell = dict(spec_mod.expand_cells(plan_group(rate={"sweep": "capacity", "steps": 4},
                                                     slo={"percentile": 99, "max_us": 1000, "steps": 3}))[0],
                    repetition=repetition)
        runs = []

        def run(derived, record_id):
            runs.append((record_id, derived))
            return synthetic_record(derived, capacity)

        clock = iter(range(0, 1000, 2))
        summary = knee.run_plan(cell, "plan", f"_r{repetition}", run, state, lambda: next(clock))
        return summary, runs

    def test_records_link_to_their_capacity_and_the_search_brackets_the_knee(self):
        state = knee.PlanState()
        summary, runs = self.run_plan(40000, state, 0)
        ids = [record_id for record_id, _ in runs]
        self.assertEqual(ids[0], "plan_capacity_r0")
        self.assertEqual(runs[0][1]["mode"], "closed")
        self.assertEqual(runs[0][1]["knee"], {"role": "capacity", "plan": "plan"})
        sweep = [cell for record_id, cell in runs if cell["knee"]["role"] == "sweep"]
        rates = [c["rate"] for c in sweep]
        self.assertEqual((len(rates), rates[0], rates[-1]), (4, 4000, 48000))
        for i, rate in enumerate(rates):  # log-spaced: 10% x 12^(i/3), fractions to 4 places
            self.assertLessEqual(abs(rate - 4000 * 12 ** (i / 3)), 3)
        for cell in sweep + [c for _, c in runs if c["knee"]["role"] == "slo-step"]:
            self.assertEqual(cell["mode"], "open")
            self.assertIsNone(cell["slo"])
            self.assertEqual(cell["knee"]["capacity_of"], "plan_capacity_r0")
            self.assertAlmostEqual(cell["knee"]["fraction"], cell["rate"] / 40000, places=3)
        search = summary["slo"]
        low, high = search["interval_msgs_per_s"]
        self.assertLess(low, high)
        # The synthetic server meets p99 <= 1 ms up to 10% over its closed-loop rate: 44,000.
        self.assertLessEqual(low, 44000)
        self.assertGreater(high, 44000)
        self.assertEqual(search["seeded_from_sweep"], [[rate, rate <= 44000] for rate in rates])
        self.assertEqual(len(search["steps"]), 3)
        self.assertEqual([s["id"] for s in search["steps"]], ["plan_slo1_r0", "plan_slo2_r0", "plan_slo3_r0"])
        self.assertTrue(all(rates[2] < s["rate"] < rates[3] for s in search["steps"]), search["steps"])

    def test_later_repetitions_measure_capacity_again_but_keep_the_first_rates(self):
        state = knee.PlanState()
        self.run_plan(40000, state, 0)
        summary, runs = self.run_plan(30000, state, 1)
        self.assertEqual(summary["capacity"]["msgs_per_s"], 30000.0)
        self.assertEqual(summary["sweep_capacity_of"], "plan_capacity_r0")
        first = [cell["rate"] for _, cell in self.run_plan(40000, knee.PlanState(), 0)[1]
                 if cell["knee"]["role"] == "sweep"]
        self.assertEqual([cell["rate"] for _, cell in runs if cell["knee"]["role"] == "sweep"], first)
        self.assertTrue(all(cell["knee"]["capacity_of"] == "plan_capacity_r0" for _, cell in runs[1:]))
        self.assertEqual(runs[0][0], "plan_capacity_r1")

    def test_a_failed_capacity_run_skips_the_rest_with_its_reason(self):
        cell = dict(spec_mod.expand_cells(plan_group())[0], repetition=0)
        summary = knee.run_plan(cell, "plan", "_r0", lambda c, i: {"status": "failed", "reason": "no server"},
                                knee.PlanState(), lambda: 0)
        self.assertEqual(summary["skipped"], "the closed-loop capacity run failed: no server")
        self.assertNotIn("slo", summary)

    def test_verdicts_say_why(self):
        slo = knee.slo_settings(dict(SLO))

        def record(p99_us, received=5000, failed=0, **loadgen):
            return {"status": "ok", "loadgen": dict({"valid": True, "latency": {"corrected": {"p99_us": p99_us}},
                                                     "errors": {"total": failed}, "messages": {"received": received}},
                                                    **loadgen)}

        self.assertEqual(knee.slo_verdict(record(800.0), slo), (True, "p99 800 µs within 1000 µs"))
        self.assertEqual(knee.slo_verdict(record(1500.0), slo), (False, "p99 1,500 µs over 1000 µs"))
        invalid = record(10.0, valid=False, invalid_reasons=["lag"])
        self.assertEqual(knee.slo_verdict(invalid, slo), (False, "invalid: lag"))
        self.assertEqual(knee.slo_verdict({"status": "failed", "reason": "x"}, slo), (False, "failed: x"))

    def test_a_run_that_lost_messages_misses_the_objective_however_fast_the_rest(self):
        # The reference run's iterative engine at 107 msgs/s over 16 connections: one client
        # served in 734 µs at p99, 301 messages of the others timed out in the backlog.
        slo = knee.slo_settings(dict(SLO))
        lossy = {"status": "ok", "loadgen": {"valid": True, "latency": {"corrected": {"p99_us": 734.0}},
                                             "errors": {"total": 301}, "messages": {"received": 20}}}
        self.assertEqual(knee.slo_verdict(lossy, slo),
                         (False, "301 messages failed (timed out, lost or wrong): each missed the objective"))
        uncounted = {"status": "ok", "loadgen": {"valid": True, "latency": {"corrected": {"p99_us": 10.0}}}}
        self.assertFalse(knee.slo_verdict(uncounted, slo)[0])

    def test_a_percentile_of_a_handful_of_messages_is_not_judged(self):
        slo = knee.slo_settings(dict(SLO))
        few = {"status": "ok", "loadgen": {"valid": True, "latency": {"corrected": {"p99_us": 846.0}},
                                           "errors": {"total": 0}, "messages": {"received": 21}}}
        self.assertEqual(knee.slo_verdict(few, slo), (False, "21 messages answered: a p99 needs at least 1,000"))
        self.assertEqual([knee.min_answered(p) for p in (50, 90, 99, 99.9)], [20, 100, 1000, 10000])


class TinyKneeRun(ResultSetCase):
    """echolab-bench on one epoll plan: 1 s cells, 2 sweep rates, 2 search steps."""

    SPEC = {"name": "tiny-knee", "repetitions": 1,
            "defaults": {"warmup_s": 0.2, "duration_s": 1.0, "timeout_s": 1.0},
            "matrix": [{"engine": "epoll", "mode": "open", "connections": 4,
                        "rate": {"sweep": "capacity", "from": 0.2, "to": 0.6, "steps": 2},
                        "slo": {"percentile": 99, "max_us": 5000, "steps": 2, "max_s": 30}}]}
    TIMEOUT = 120

    def test_capacity_sweep_and_search_are_recorded_and_linked(self):
        self.assertEqual(self.completed.returncode, 0, self.completed.stderr)
        manifest = self.load("manifest.json")
        ids = [entry["id"] for entry in manifest["cells"]]
        plan = "epoll_tcp_open_c4_s64_knee_slo-p99-5000us"
        self.assertEqual(ids[:3], [f"{plan}_capacity_r0", f"{plan}_f0.2_r0", f"{plan}_f0.6_r0"])
        self.assertTrue(all(entry["status"] == "ok" for entry in manifest["cells"]), manifest["cells"])
        (summary,) = manifest["knee"]
        capacity = self.load(f"cells/{plan}_capacity_r0.json")
        self.assertEqual(capacity["cell"]["mode"], "closed")
        measured = capacity["loadgen"]["throughput"]["msgs_per_s"]
        self.assertEqual(summary["capacity"]["msgs_per_s"], measured)
        for fraction in (0.2, 0.6):
            record = self.load(f"cells/{plan}_f{fraction:g}_r0.json")
            self.assertEqual(record["cell"]["rate"], round(fraction * measured))
            self.assertEqual(record["cell"]["knee"]["capacity_of"], f"{plan}_capacity_r0")
            self.assertEqual(record["loadgen"]["config"]["mode"], "open")
        search = summary["slo"]
        self.assertEqual(len(search["steps"]), len(ids) - 3)
        self.assertLessEqual(len(search["steps"]), 2)
        for step in search["steps"]:
            record = self.load(f"cells/{step['id']}.json")
            self.assertEqual(record["cell"]["rate"], step["rate"])
            self.assertEqual(record["cell"]["knee"]["role"], "slo-step")
        low, high = search["interval_msgs_per_s"]
        self.assertTrue(low is None or high is None or low < high, search)

    def test_result_set_is_schema_valid(self):
        self.check_schemas()

    def test_the_plots_draw_the_knee_and_the_capacity(self):
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            self.skipTest(f"{sys.executable} has no matplotlib")
        figures = os.path.join(self.tmp.name, "figures")
        run = subprocess.run([sys.executable, os.path.join(REPO, "plots", "echolab-plot"), self.out, "--out", figures,
                              "--markdown", "-"], capture_output=True, text=True, timeout=100)
        self.assertEqual(run.returncode, 0, run.stderr)
        for name in ("latency_vs_rate", "slo_capacity"):
            self.assertTrue(os.path.isfile(os.path.join(figures, f"{name}.png")), run.stdout)
        self.assertIn("Capacity at the latency objective", run.stdout)
        self.assertIn("| epoll | 4 | p99 ≤ 5000 µs |", run.stdout)


if __name__ == "__main__":
    unittest.main()
