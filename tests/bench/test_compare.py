"""echolab-compare: the statistics against known answers (scipy when it is importable,
published table values always), the exit codes on golden result sets (tests/data/compare,
written by make_golden.py), the markdown table on a golden input, the JSON against its
schema, and the A/B runner's pieces that need no server."""
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GOLDEN = os.path.join(REPO, "tests", "data", "compare")
COMPARE = os.path.join(REPO, "bench", "echolab-compare")
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "bench"))

import schema_check  # noqa: E402
from compare import stats  # noqa: E402
from runner import main as runner_main  # noqa: E402
from runner import sides  # noqa: E402

try:
    from scipy.stats import mannwhitneyu
except ImportError:
    mannwhitneyu = None


def run_compare(*args):
    return subprocess.run([sys.executable, COMPARE, *args], capture_output=True, text=True, timeout=60)


def golden(name):
    return os.path.join(GOLDEN, name)


class MannWhitney(unittest.TestCase):
    def test_published_critical_values(self):
        # Two-sided critical values of U from the standard tables: n1 = n2 = 9 at 0.01 is 11,
        # n1 = n2 = 5 at 0.05 is 2: at the critical U the exact p is at most alpha, one above it is over.
        for n, alpha, critical in ((9, 0.01, 11), (5, 0.05, 2)):
            for u, below in ((critical, True), (critical + 1, False)):
                # x = 0..n-1; each y_j sits below count_j of them, so U(x) = sum count_j = u.
                x, y, remaining = [float(i) for i in range(n)], [], u
                for _ in range(n):
                    count = min(n, remaining)
                    remaining -= count
                    y.append(n - count - 0.5 + (0.01 * len(y) if count == 0 else 0))
                result = stats.mann_whitney_u(x, y)
                self.assertEqual(min(result.u1, result.u2), u)
                self.assertEqual(result.method, "exact")
                self.assertEqual(result.p_value <= alpha, below, (n, u, result.p_value))

    def test_textbook_example(self):
        result = stats.mann_whitney_u([19, 22, 16, 29, 24], [20, 11, 17, 12])
        self.assertEqual(result.u1, 17)
        self.assertAlmostEqual(result.p_value, 1 / 9, places=12)  # 2 * 7/126

    def test_ties_use_the_corrected_normal_approximation(self):
        # Hand computed: U = 1.5, tie-corrected sigma = sqrt(36/12 * (13 - 90/132)), z = (34.5 - 18 - 0.5)/sigma.
        result = stats.mann_whitney_u([1, 2, 2, 3, 3, 3], [3, 4, 4, 5, 6, 6])
        sigma = math.sqrt(36 / 12 * (13 - (2 ** 3 - 2 + 4 ** 3 - 4 + 2 ** 3 - 2 + 2 ** 3 - 2) / 132))
        self.assertEqual(result.method, "asymptotic")
        self.assertAlmostEqual(result.p_value, math.erfc((34.5 - 18 - 0.5) / sigma / math.sqrt(2)), places=12)

    def test_all_equal_is_no_evidence(self):
        self.assertEqual(stats.mann_whitney_u([3.0, 3.0, 3.0], [3.0, 3.0]).p_value, 1.0)

    @unittest.skipIf(mannwhitneyu is None, "scipy is not importable")
    def test_agrees_with_scipy(self):
        rng = random.Random(7)
        for _ in range(400):
            n1, n2 = rng.randint(1, 15), rng.randint(1, 15)
            x = [rng.gauss(0, 1) for _ in range(n1)]
            y = [rng.gauss(rng.choice([0, 0.8]), 1) for _ in range(n2)]
            if rng.random() < 0.5:  # ties, as repetitions of a quantised metric have
                x, y = [round(v, 1) for v in x], [round(v, 1) for v in y]
            ours = stats.mann_whitney_u(x, y)
            theirs = mannwhitneyu(x, y, alternative="two-sided", method=ours.method, use_continuity=True)
            self.assertAlmostEqual(ours.u1, theirs.statistic, places=9)
            self.assertAlmostEqual(ours.p_value, theirs.pvalue, places=9, msg=(x, y, ours.method))

    def test_smallest_reachable_p(self):
        self.assertAlmostEqual(stats.smallest_p(3, 3), 0.1)
        self.assertAlmostEqual(stats.smallest_p(5, 5), 2 / 252)
        self.assertEqual(stats.repetitions_needed(0.01), 5)
        self.assertEqual(stats.repetitions_needed(0.05), 4)


class Bootstrap(unittest.TestCase):
    def test_seeded_and_on_the_right_side(self):
        base = [100.0, 101.0, 99.0, 100.5, 99.5, 100.2]
        slower = [v * 1.2 for v in base]
        first = stats.bootstrap_ci(base, slower, resamples=2000, seed=3)
        self.assertEqual(first, stats.bootstrap_ci(base, slower, resamples=2000, seed=3))
        self.assertGreater(first[0], 1.15)
        self.assertLess(first[1], 1.25)
        low, high = stats.bootstrap_ci(base, list(base), resamples=2000, seed=3)
        self.assertLessEqual(low, 1.0)
        self.assertGreaterEqual(high, 1.0)

    def test_difference_and_zero_baseline(self):
        self.assertEqual(stats.bootstrap_ci([0.0, 0.0], [0.0, 0.0], effect="difference"), (0.0, 0.0))
        self.assertIsNone(stats.bootstrap_ci([0.0, 0.0], [1.0, 2.0], effect="ratio"))


class ExitCodes(unittest.TestCase):
    def assert_exit(self, code, *args):
        completed = run_compare("--quiet", *args)
        self.assertEqual(completed.returncode, code, completed.stdout + completed.stderr)
        return completed

    def test_same_build_passes(self):
        self.assert_exit(0, golden("base"), golden("same"))

    def test_slower_candidate_is_a_regression(self):
        completed = self.assert_exit(1, golden("base"), golden("slower"), "--markdown", "-")
        self.assertIn("regression", completed.stdout.splitlines()[0])
        self.assertIn("select_tcp_closed_c1_s64 throughput", completed.stdout.splitlines()[0])

    def test_noise_is_inconclusive_and_says_what_it_could_detect(self):
        completed = self.assert_exit(3, golden("base"), golden("noisy"), "--markdown", "-")
        self.assertIn("smallest change this run could have detected: throughput", completed.stdout)

    def test_too_few_repetitions_are_inconclusive_not_pass(self):
        completed = self.assert_exit(3, golden("few-base"), golden("few-candidate"), "--markdown", "-")
        self.assertIn("cannot reach p < 0.01 (smallest possible p = 0.1)", completed.stdout)
        self.assertIn("run at least 5 a side", completed.stdout)

    def test_invalid_load_voids_the_cell(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "out.json")
            self.assert_exit(3, golden("base"), golden("invalid"), "--json", path)
            with open(path) as f:
                result = json.load(f)
        void = {c["id"]: c for c in result["cells"] if c["status"] == "void"}
        self.assertEqual(sorted(void), ["select_tcp_closed_c1_s64", "thread_tcp_closed_c1_s64"])
        self.assertIn("send lag", void["select_tcp_closed_c1_s64"]["void_reasons"][0])
        self.assertEqual(void["select_tcp_closed_c1_s64"]["metrics"], [])

    def test_different_hosts_are_refused_unless_allowed(self):
        completed = self.assert_exit(2, golden("base"), golden("other-host"))
        self.assertIn("different hosts", completed.stderr)
        self.assertIn("--allow-different-hosts", completed.stderr)
        self.assertEqual(len(completed.stderr.strip().splitlines()), 1)
        allowed = run_compare("--quiet", "--allow-different-hosts", golden("base"), golden("other-host"))
        self.assertEqual(allowed.returncode, 3, allowed.stderr)  # 2 repetitions: allowed, but inconclusive

    def test_different_specs_are_refused(self):
        completed = self.assert_exit(2, golden("base"), golden("other-spec"))
        self.assertIn("different specs: only in baseline: thread_tcp_closed_c1_s64", completed.stderr)

    def test_a_sockperf_client_side_run_leaves_the_cell_comparable(self):
        # A newer runner's cells carry sockperf_client (false, or true where sockperf's own
        # client ran after the load generator): the same cells as an older result set's.
        with tempfile.TemporaryDirectory() as tmp:
            newer = os.path.join(tmp, "newer")
            shutil.copytree(golden("same"), newer)
            cells = os.path.join(newer, "cells")
            for index, name in enumerate(sorted(os.listdir(cells))):
                with open(os.path.join(cells, name)) as f:
                    record = json.load(f)
                record["cell"]["sockperf_client"] = index % 2 == 0
                with open(os.path.join(cells, name), "w") as f:
                    json.dump(record, f)
            self.assert_exit(0, golden("base"), newer)

    def test_unreadable_inputs_are_refused_in_one_line(self):
        with tempfile.TemporaryDirectory() as tmp:
            broken = os.path.join(tmp, "broken")
            shutil.copytree(golden("same"), broken)
            with open(os.path.join(broken, "cells", "thread_tcp_closed_c1_s64_r3.json"), "w") as f:
                f.write("{not json")
            for args in ((golden("base"), broken), (golden("base"), os.path.join(tmp, "missing")),
                         (golden("base"),), (golden("ab"), golden("base"))):
                completed = self.assert_exit(2, *args)
                self.assertEqual(len(completed.stderr.strip().splitlines()), 1, completed.stderr)

    def test_bad_threshold_is_refused(self):
        self.assert_exit(2, golden("base"), golden("same"), "--threshold", "speed=5%")

    def test_a_tighter_threshold_from_the_command_line_counts(self):
        # The thread cell of "slower" is unchanged: no threshold makes it a regression, but
        # a 1 % syscall tolerance keeps select's 10 % a regression.
        self.assert_exit(1, golden("base"), golden("slower"), "--threshold", "syscalls_per_msg=1%")

    def test_two_single_load_generator_files(self):
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for name in ("base", "slower"):
                with open(os.path.join(golden(name), "cells", "select_tcp_closed_c1_s64_r0.json")) as f:
                    loadgen = json.load(f)["loadgen"]
                loadgen["config"] = {"mode": "closed", "connections": 1, "size": "64"}
                paths.append(os.path.join(tmp, name + ".json"))
                with open(paths[-1], "w") as f:
                    json.dump(loadgen, f)
            completed = self.assert_exit(3, *paths, "--markdown", "-")  # one repetition a side
            self.assertIn("too few repetitions", completed.stdout)
            loadgen["config"]["connections"] = 16
            with open(paths[-1], "w") as f:
                json.dump(loadgen, f)
            self.assertIn("different specs", self.assert_exit(2, *paths).stderr)


class Reports(unittest.TestCase):
    def test_markdown_matches_the_golden_table(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "table.md")
            completed = run_compare("--quiet", "--markdown", path, golden("ab"))
            self.assertEqual(completed.returncode, 1, completed.stderr)
            with open(path) as f, open(golden("ab.expected.md")) as g:
                self.assertEqual(f.read(), g.read())

    def test_json_is_schema_valid(self):
        try:
            validators = schema_check.load_validators()
        except ImportError:
            self.skipTest("python3-jsonschema is not installed")
        with tempfile.TemporaryDirectory() as tmp:
            for args in ((golden("ab"),), (golden("base"), golden("invalid")), (golden("few-base"),
                                                                               golden("few-candidate"))):
                path = os.path.join(tmp, "out.json")
                run_compare("--quiet", "--json", path, *args)
                with open(path) as f:
                    validators["compare-result"].validate(json.load(f))

    def test_golden_result_sets_are_schema_valid(self):
        try:
            validators = schema_check.load_validators()
        except ImportError:
            self.skipTest("python3-jsonschema is not installed")
        for name in ("ab", "base"):
            with open(os.path.join(golden(name), "manifest.json")) as f:
                manifest = json.load(f)
            validators["bench-manifest"].validate(manifest)
            for entry in manifest["cells"]:
                with open(os.path.join(golden(name), entry["file"])) as f:
                    validators["bench-cell"].validate(json.load(f))


class Sides(unittest.TestCase):
    def args(self, *argv):
        return runner_main.parse_args(["--build-dir", "/b", *argv])

    def test_no_sides_for_a_plain_run(self):
        self.assertEqual(sides.sides_from_args(self.args()), [])

    def test_server_args_alone_use_the_build_dir_twice(self):
        found = sides.sides_from_args(self.args("--candidate-server-args=--work cpu:200us", "--aa"))
        self.assertEqual([(s.name, s.build_dir, s.server_args) for s in found],
                         [("A", "/b", []), ("B", "/b", ["--work", "cpu:200us"]), ("A2", "/b", [])])

    def test_runner_owned_options_are_refused(self):
        with self.assertRaises(sides.SideError):
            sides.sides_from_args(self.args("--candidate-server-args=--listen=127.0.0.1:1"))

    def test_order_alternates(self):
        self.assertEqual([sides.side_order(["A", "B"], rep) for rep in range(4)],
                         [["A", "B"], ["B", "A"], ["A", "B"], ["B", "A"]])
        orders = [tuple(sides.side_order(["A", "B", "A2"], rep)) for rep in range(6)]
        self.assertEqual(len(set(orders)), 6)
        for position in range(3):  # each side in each position equally often
            self.assertEqual(sorted(o[position] for o in orders), ["A", "A", "A2", "A2", "B", "B"])

    def test_extra_args_replace_the_cells_value(self):
        command = ["server", "--engine", "select", "--work", "none", "--stats-json", "/s"]
        self.assertEqual(sides.with_extra_args(command, ["--work", "cpu:200us", "--no-nodelay", "--sndbuf=4096"]),
                         ["server", "--engine", "select", "--work", "cpu:200us", "--stats-json", "/s",
                          "--no-nodelay", "--sndbuf=4096"])
        self.assertEqual(sides.with_extra_args(command, ["--work=sleep:1ms"])[4], "sleep:1ms")


if __name__ == "__main__":
    unittest.main()
