"""The pull-request gate's other signals, on golden inputs (tests/data/compare/callgrind and
microbench): the callgrind output parser, the instructions-per-message judgement, the
micro-benchmark comparison's exit codes, and ci-check's argument handling (nothing built)."""
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(REPO, "tests", "data", "compare")
CALLGRIND = os.path.join(GOLDEN, "callgrind")
MICRO = os.path.join(GOLDEN, "microbench")
COMPARE = os.path.join(REPO, "bench", "echolab-compare")
CI_CHECK = os.path.join(REPO, "bench", "ci-check")
GATE_RATES = os.path.join(REPO, "bench", "gate_error_rates.py")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "bench"))

import schema_check  # noqa: E402
from compare import callgrind, metrics  # noqa: E402
from runner import callgrind as runner_callgrind  # noqa: E402
from runner import main as runner_main  # noqa: E402
from runner import spec  # noqa: E402


def run(*command, timeout=60):
    return subprocess.run(list(command), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def compare(*args):
    return run(sys.executable, COMPARE, *args)


def validate(document):
    try:
        validators = schema_check.load_validators()
    except ImportError:
        return  # python3-jsonschema missing: the other assertions still run
    validators["compare-result"].validate(document)


class CallgrindParser(unittest.TestCase):
    def test_totals_win_over_the_header_summary(self):
        self.assertEqual(callgrind.parse_totals(os.path.join(CALLGRIND, "callgrind.out.1234")), {"Ir": 24681357})

    def test_parts_add_up_and_events_are_named(self):
        self.assertEqual(callgrind.parse_totals(os.path.join(CALLGRIND, "callgrind.out.1235")),
                         {"Ir": 1234, "Dr": 500, "Dw": 251})

    def test_one_run_sums_every_process_file(self):
        paths = [os.path.join(CALLGRIND, f"callgrind.out.{pid}") for pid in (1234, 1235)]
        self.assertEqual(callgrind.instructions(paths), 24681357 + 1234)

    def test_a_file_without_totals_or_events_is_refused(self):
        with self.assertRaisesRegex(callgrind.FormatError, "no totals: or summary: line"):
            callgrind.parse_totals(os.path.join(CALLGRIND, "callgrind.out.truncated"))
        with self.assertRaisesRegex(callgrind.FormatError, "not a callgrind output file"):
            callgrind.parse_totals(os.path.join(CALLGRIND, "base.json"))
        with self.assertRaisesRegex(callgrind.FormatError, "cannot read"):
            callgrind.parse_totals(os.path.join(CALLGRIND, "missing"))

    def test_a_file_without_instructions_is_refused(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "callgrind.out.1")
            with open(path, "w") as f:
                f.write("events: Dr\ntotals: 5\n")
            with self.assertRaisesRegex(callgrind.FormatError, "no Ir event"):
                callgrind.instructions([path])


class InstructionJudgement(unittest.TestCase):
    def settings(self):
        return metrics.Settings()

    def test_within_tolerance_passes_and_beyond_it_regresses(self):
        base = [10000.0, 10012.0, 10006.0]
        self.assertEqual(callgrind.judge_counts(base, [10050.0, 10061.0, 10049.0], 0.01, self.settings())["verdict"],
                         "pass")
        self.assertEqual(callgrind.judge_counts(base, [10300.0, 10310.0, 10295.0], 0.01, self.settings())["verdict"],
                         "regression")

    def test_the_observed_spread_widens_the_tolerance(self):
        judged = callgrind.judge_counts([10000.0, 10500.0, 10300.0], [10600.0, 10610.0, 10620.0], 0.01,
                                        self.settings())
        self.assertEqual(judged["verdict"], "pass")
        self.assertAlmostEqual(judged["threshold"], 500 / 10300)
        self.assertIn("widened", judged["note"])

    def test_two_runs_a_side_are_not_enough(self):
        self.assertEqual(callgrind.judge_counts([1.0, 1.0], [2.0, 2.0], 0.01, self.settings())["verdict"],
                         "inconclusive")

    def with_counts(self, tmp, result_set, counts):
        target = os.path.join(tmp, f"{result_set}-{counts}")
        shutil.copytree(os.path.join(GOLDEN, result_set), target)
        shutil.copy(os.path.join(CALLGRIND, counts + ".json"), os.path.join(target, callgrind.FILE_NAME))
        return target

    def gate(self, counts, code):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out.json")
            completed = compare("--quiet", self.with_counts(tmp, "base", "base"), self.with_counts(tmp, "same", counts),
                                "--markdown", "-", "--json", out)
            self.assertEqual(completed.returncode, code, completed.stdout + completed.stderr)
            with open(out) as f:
                result = json.load(f)
        validate(result)
        rows = [(c["id"], m["verdict"]) for c in result["cells"] for m in c["metrics"]
                if m["metric"] == "instructions_per_msg"]
        return completed, dict(rows)

    def test_golden_counts_within_tolerance_pass(self):
        completed, rows = self.gate("within", 0)
        self.assertEqual(rows, {"select_tcp_closed_c1_s64 (callgrind)": "pass",
                                "thread_tcp_closed_c1_s64 (callgrind)": "pass"})
        self.assertIn("| select_tcp_closed_c1_s64 (callgrind) | instructions per message |", completed.stdout)

    def test_golden_extra_work_fails_the_gate(self):
        completed, rows = self.gate("more-work", 1)
        self.assertEqual(rows["select_tcp_closed_c1_s64 (callgrind)"], "regression")
        self.assertEqual(rows["thread_tcp_closed_c1_s64 (callgrind)"], "pass")
        self.assertIn("select_tcp_closed_c1_s64 (callgrind) instructions_per_msg +2.9%",
                      completed.stdout.splitlines()[0])

    def test_golden_noisy_counts_widen_and_pass(self):
        completed, rows = self.gate("noisy", 0)
        self.assertEqual(rows["select_tcp_closed_c1_s64 (callgrind)"], "pass")

    def test_a_failed_count_voids_its_cell(self):
        with tempfile.TemporaryDirectory() as tmp:
            cand = self.with_counts(tmp, "same", "within")
            path = os.path.join(cand, callgrind.FILE_NAME)
            with open(path) as f:
                document = json.load(f)
            document["runs"][0] = {"id": document["runs"][0]["id"], "side": None, "repetition": 0,
                                   "status": "failed", "reason": "callgrind wrote no output file"}
            with open(path, "w") as f:
                json.dump(document, f)
            completed = compare("--quiet", self.with_counts(tmp, "base", "base"), cand, "--markdown", "-")
        self.assertEqual(completed.returncode, 3, completed.stdout + completed.stderr)
        self.assertIn("callgrind wrote no output file", completed.stdout)

    def test_runner_counts_one_cell_per_engine_at_one_connection(self):
        cells = spec.expand_cells(spec.load_spec("ci"))
        chosen = runner_callgrind.cells_for(cells)
        self.assertEqual([c["engine"] for c in chosen], ["select", "thread", "prefork"])
        self.assertTrue(all(c["mode"] == "closed" and c["connections"] == 1 for c in chosen))

    def test_runner_refuses_unbounded_counts(self):
        for argv in (["--callgrind-messages", "0"], ["--callgrind-repetitions", "100"]):
            with self.assertRaises(SystemExit) as raised, contextlib.redirect_stderr(io.StringIO()):
                runner_main.parse_args(argv)
            self.assertEqual(raised.exception.code, 2)


class Microbench(unittest.TestCase):
    def micro(self, base, cand, *extra):
        return compare("--quiet", "--microbench", os.path.join(MICRO, base), os.path.join(MICRO, cand), *extra)

    def test_same_times_pass(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out.json")
            completed = self.micro("base.json", "same.json", "--markdown", "-", "--json", out)
            self.assertEqual(completed.returncode, 0, completed.stdout + completed.stderr)
            with open(out) as f:
                result = json.load(f)
        validate(result)
        self.assertEqual(sorted(c["id"] for c in result["cells"]), ["BM_FrameDecode/512", "BM_Record"])
        self.assertEqual([c["repetitions"] for c in result["cells"]], [{"baseline": 9, "candidate": 9}] * 2)

    def test_twenty_percent_slower_fails(self):
        completed = self.micro("base.json", "slower.json", "--markdown", "-")
        self.assertEqual(completed.returncode, 1, completed.stdout + completed.stderr)
        self.assertIn("BM_FrameDecode/512 cpu_time +20.0%", completed.stdout.splitlines()[0])
        self.assertIn("| BM_Record | CPU time (ns) |", completed.stdout)

    def test_a_threshold_above_the_change_passes(self):
        self.assertEqual(self.micro("base.json", "slower.json", "--microbench-threshold", "25%").returncode, 0)

    def test_inputs_that_cannot_be_compared_are_one_line_exit_2(self):
        for args in ((os.path.join(MICRO, "base.json"), MICRO), (os.path.join(MICRO, "base.json"), "/nonexistent"),
                     (os.path.join(MICRO, "base.json"), os.path.join(CALLGRIND, "callgrind.out.1234"))):
            completed = compare("--quiet", "--microbench", *args)
            self.assertEqual(completed.returncode, 2, completed.stderr)
            self.assertEqual(len(completed.stderr.strip().splitlines()), 1, completed.stderr)


class CiCheckArguments(unittest.TestCase):
    def assert_refused(self, *args, says):
        completed = run(CI_CHECK, *args, timeout=30)
        self.assertEqual(completed.returncode, 2, completed.stdout + completed.stderr)
        lines = completed.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, completed.stderr)
        self.assertIn(says, lines[0])
        self.assertEqual(completed.stdout, "")

    def test_a_bad_ref_is_one_line_exit_2(self):
        self.assert_refused("no-such-ref-anywhere", says="unknown revision 'no-such-ref-anywhere'")
        self.assert_refused("HEAD", "no-such-head", says="unknown revision 'no-such-head'")

    def test_usage_mistakes_are_one_line_exit_2(self):
        self.assert_refused(says="give BASE_REF")
        self.assert_refused("HEAD", "HEAD", "HEAD", says="too many arguments")
        self.assert_refused("HEAD", "--frobnicate", says="unknown option --frobnicate")
        self.assert_refused("HEAD", "--jobs", "zero", says="--jobs must be a positive integer")
        self.assert_refused("HEAD", "--markdown", says="--markdown needs a value")

    def test_help_exits_0(self):
        completed = run(CI_CHECK, "--help", timeout=30)
        self.assertEqual(completed.returncode, 0)
        self.assertIn("usage: bench/ci-check BASE_REF [HEAD_REF]", completed.stdout)


def fake_build(folder):
    """A build folder whose binaries exist (so the script's checks pass) and do nothing."""
    build = os.path.join(folder, "build")
    for subfolder, name in (("servers", "echolab-server"), ("loadgen", "echolab-loadgen")):
        os.makedirs(os.path.join(build, subfolder))
        path = os.path.join(build, subfolder, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexit 1\n")
        os.chmod(path, 0o755)
    return build


class GateErrorRatesArguments(unittest.TestCase):
    def test_mistakes_are_refused_before_anything_runs(self):
        with tempfile.TemporaryDirectory() as tmp:
            build = fake_build(tmp)
            out = os.path.join(tmp, "rates.json")
            for args, says in ((["--aa-runs", "0", "--injected-runs", "0"], "nothing to run"),
                               (["--aa-runs", "-1"], "--aa-runs must be"),
                               (["--injected-runs", "1001"], "--injected-runs must be"),
                               (["--build-dir", os.path.join(tmp, "nothing")], "no echolab-server"),
                               (["--inject", ""], "--inject must name"),
                               (["--candidate-build", os.path.join(tmp, "nothing")], "no echolab-server"),
                               (["--inject", "'unclosed"], "--inject:"),
                               (["--out", os.path.join(tmp, "no", "rates.json")], "--out: no folder")):
                argv = ["--build-dir", build, "--out", out] + args
                completed = run(sys.executable, GATE_RATES, *argv)
                self.assertEqual(completed.returncode, 2, completed.stderr)
                self.assertIn(says, completed.stderr.strip().splitlines()[-1])
                self.assertFalse(os.path.exists(out))


    def test_rates_are_recounted_from_kept_runs(self):
        def verdict(exit_code, metrics):
            return {"exit_code": exit_code, "summary": f"exit {exit_code}",
                    "cells": [{"id": "c", "metrics": [dict(gate=True, **m) for m in metrics]}]}
        kept = {
            "aa-000": verdict(0, [{"metric": "throughput", "verdict": "pass", "detectable_change": 0.05}]),
            "aa-001": verdict(1, [{"metric": "throughput", "verdict": "regression", "detectable_change": 0.2}]),
            "injected-000": verdict(1, [{"metric": "instructions_per_msg", "verdict": "regression",
                                         "detectable_change": 0.01}]),
            "injected-001": verdict(3, [{"metric": "p99", "verdict": "inconclusive", "detectable_change": 0.4}]),
        }
        with tempfile.TemporaryDirectory() as tmp:
            build = fake_build(tmp)
            for run_id, document in kept.items():
                os.makedirs(os.path.join(tmp, "kept", run_id))
                with open(os.path.join(tmp, "kept", run_id, "compare.json"), "w") as f:
                    json.dump(document, f)
            out = os.path.join(tmp, "rates.json")
            completed = run(sys.executable, GATE_RATES, "--build-dir", build, "--from-kept",
                            os.path.join(tmp, "kept"), "--out", out)
            self.assertEqual(completed.returncode, 0, completed.stderr)
            with open(out) as f:
                rates = json.load(f)
        self.assertEqual((rates["aa_runs"], rates["false_alarms"], rates["specificity"]), (2, 1, 0.5))
        self.assertEqual(rates["false_alarms_per_metric"], {"throughput": 1})
        self.assertEqual((rates["injected_runs"], rates["caught"], rates["sensitivity"]), (2, 1, 0.5))
        self.assertEqual(rates["caught_per_metric"], {"instructions_per_msg": 1})
        self.assertEqual(rates["caught_without_instruction_counts"], 0)
        self.assertEqual(rates["inconclusive"], {"aa": 0, "injected": 1})
        self.assertEqual(rates["noise_per_metric"]["throughput"],
                         {"runs": 2, "detectable_median": 0.125, "detectable_p90": 0.2})


if __name__ == "__main__":
    unittest.main()
