"""A cell's sockperf_client side run. Where a spec may ask for it (accepted and rejected
cases, the engine's transports read from its table row), the shipped specs asking for it on
an existing cell without adding one, and echolab-bench end to end on a tiny spec: sockperf's
own client measured the epoll engine beside the load generator, over one socket and over a
feed file, and a sockperf missing from PATH left the load generator's numbers standing."""
import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import schema_check  # noqa: E402
from bench_harness import BUILD_DIR, REPO, run_bench  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "bench"))
sys.path.insert(0, os.path.join(REPO, "plots"))
from echolab_plot import results as results_mod  # noqa: E402
from runner import engines as engines_mod  # noqa: E402
from runner import spec as spec_mod  # noqa: E402

SERVER = os.path.join(BUILD_DIR, "servers", "echolab-server")

# Made-up rows: what an engine serves is read from its row, never from its name.
TABLE = [
    {"name": "loop", "serves": "streams", "concurrency": "multiplexed", "available": True,
     "transports": ["tcp", "unix-stream"]},
    {"name": "dgram", "serves": "datagrams", "concurrency": "pool", "available": True,
     "transports": ["udp", "unix-dgram"]},
    {"name": "udp-named-tcp-only", "serves": "streams", "concurrency": "multiplexed", "available": True,
     "transports": ["tcp"]},
]


def expand(*groups, table=TABLE):
    return spec_mod.expand_cells({"matrix": list(groups)}, engine_table=table)


class SpecValidation(unittest.TestCase):
    def test_closed_loops_over_tcp_and_udp_are_accepted(self):
        cells = expand({"engine": "loop", "connections": [1, 4], "sockperf_client": True},
                       {"engine": "dgram", "transport": "udp", "connections": 2, "sockperf_client": True})
        self.assertEqual([(c["engine"], c["transport"], c["connections"], c["sockperf_client"]) for c in cells],
                         [("loop", "tcp", 1, True), ("loop", "tcp", 4, True), ("dgram", "udp", 2, True)])

    def test_off_by_default_and_needs_no_engine_table_then(self):
        cells = spec_mod.expand_cells({"matrix": [{"engine": "anything", "mode": "connect"}]})
        self.assertIs(cells[0]["sockperf_client"], False)

    def test_a_group_that_repeats_a_cell_turns_it_on_in_place(self):
        plain = expand({"engine": ["loop", "udp-named-tcp-only"], "connections": [1, 8]})
        with_side_run = expand({"engine": ["loop", "udp-named-tcp-only"], "connections": [1, 8]},
                               {"engine": "loop", "connections": 1, "sockperf_client": True})
        self.assertEqual([spec_mod.cell_id(c) for c in with_side_run], [spec_mod.cell_id(c) for c in plain])
        self.assertEqual([c["sockperf_client"] for c in with_side_run], [True, False, False, False])
        self.assertEqual((with_side_run[0]["engine"], with_side_run[0]["connections"]), ("loop", 1))

    def test_rejected_where_sockperf_cannot_measure_the_cell(self):
        cases = [
            ({"reference": "sockperf", "engine": "sockperf", "connections": 1}, "a reference cell"),
            ({"engine": "loop", "mode": "open", "rate": 1000}, "closed loop at depth 1"),
            ({"engine": "loop", "mode": "connect"}, "closed loop at depth 1"),
            ({"engine": "loop", "pipeline": 4}, "closed loop at depth 1"),
            ({"engine": "loop", "size": "64..1024"}, "fixed message size"),
            ({"engine": "loop", "size": "100000"}, "at most 65507 bytes"),
            ({"engine": "loop", "transport": "unix-stream"}, "speaks tcp or udp, not unix-stream"),
            ({"engine": "loop", "transport": "udp"}, "loop does not serve udp"),
            ({"engine": "udp-named-tcp-only", "transport": "udp"}, "does not serve udp"),
            ({"engine": "dgram", "transport": "tcp"}, "dgram does not serve tcp"),
            ({"engine": "no-such-engine"}, "no engine 'no-such-engine' in the engine table"),
        ]
        for group, message in cases:
            with self.subTest(group=group), self.assertRaisesRegex(spec_mod.SpecError, message):
                expand(dict(group, sockperf_client=True))

    def test_rejected_without_the_engine_table_or_a_boolean(self):
        with self.assertRaisesRegex(spec_mod.SpecError, "needs the engine table"):
            spec_mod.expand_cells({"matrix": [{"engine": "loop", "sockperf_client": True}]})
        with self.assertRaisesRegex(spec_mod.SpecError, "matrix group 0: sockperf_client must be true or false"):
            expand({"engine": "loop", "sockperf_client": "yes"})

    def test_shipped_specs_ask_for_it_on_epolls_one_connection_cell_without_adding_a_cell(self):
        table = engines_mod.load_engine_table(SERVER)
        for name in ("quick", "full"):
            with self.subTest(spec=name):
                spec = spec_mod.load_spec(name)
                cells = spec_mod.expand_cells(spec, engine_table=table)
                marked = [c for c in cells if c["sockperf_client"]]
                self.assertEqual([(c["engine"], c["transport"], c["mode"], c["connections"]) for c in marked],
                                 [("epoll", "tcp", "closed", 1)])
                without = dict(spec, matrix=[g for g in spec["matrix"] if not g.get("sockperf_client")])
                self.assertEqual([spec_mod.cell_id(c) for c in cells],
                                 [spec_mod.cell_id(c) for c in spec_mod.expand_cells(without, engine_table=table)])


class ResultSet:
    """echolab-bench on `spec`, in a scratch folder removed by the test case's cleanup."""

    def __init__(self, case, spec, env=None):
        folder = tempfile.mkdtemp(prefix="echolab-sockperf-client-test-")
        case.addCleanup(shutil.rmtree, folder, ignore_errors=True)
        self.completed = run_bench(spec, folder, "run", timeout=120, env=env)
        self.out = os.path.join(folder, "run")

    def load(self, relative):
        with open(os.path.join(self.out, relative)) as f:
            return json.load(f)

    def records(self):
        return [self.load(entry["file"]) for entry in self.load("manifest.json")["cells"]]


def tiny_spec(connections):
    return {"name": "sockperf-client", "repetitions": 1,
            "defaults": {"warmup_s": 0.2, "duration_s": 1.0, "timeout_s": 1.0},
            "matrix": [{"engine": "epoll", "mode": "closed", "connections": connections, "sockperf_client": True}]}


def validate(case, records):
    try:
        validators = schema_check.load_validators()
    except ImportError:
        case.skipTest("python3-jsonschema is not installed")
    for record in records:
        validators["bench-cell"].validate(record)


class EndToEnd(unittest.TestCase):
    def check_load_generator_measured(self, record):
        self.assertEqual(record["status"], "ok", record.get("reason"))
        self.assertGreater(record["loadgen"]["throughput"]["msgs_per_s"], 0)
        self.assertGreater(record["server"]["stats"]["counters"]["messages"], 0)

    @unittest.skipUnless(shutil.which("sockperf"), "sockperf is not installed (apt-get install sockperf)")
    def test_sockperf_client_measures_the_same_engine_over_one_socket_and_a_feed_file(self):
        run = ResultSet(self, tiny_spec([1, 2]))
        self.assertEqual(run.completed.returncode, 0, run.completed.stderr)
        records = run.records()
        self.assertEqual(sorted(r["cell"]["connections"] for r in records), [1, 2])
        for record in records:
            with self.subTest(connections=record["cell"]["connections"]):
                self.check_load_generator_measured(record)
                side = record["sockperf_client"]
                self.assertNotIn("error", side)
                self.assertGreater(side["messages"], 0)
                self.assertGreater(side["messages_per_s"], 0)
                self.assertGreater(side["latency_us"]["p50"], 0)
                self.assertGreaterEqual(side["latency_us"]["p99"], side["latency_us"]["p50"])
                self.assertEqual((side["sockets"], side["message_size"]), (record["cell"]["connections"], 64))
                # The plots read it under their own names, beside the load generator's.
                metrics = results_mod.repetition_metrics(record)
                self.assertEqual(metrics["sockperf_msgs_per_s"], side["messages_per_s"])
                self.assertEqual(metrics["sockperf_p50_us"], side["latency_us"]["p50"])
                self.assertGreater(metrics["msgs_per_s"], 0)
        validate(self, records)

    def test_a_missing_sockperf_is_an_error_beside_the_load_generators_numbers(self):
        # PATH holds only what the runner may use besides sockperf (pinning, the git commit).
        bin_dir = tempfile.mkdtemp(prefix="echolab-no-sockperf-")
        self.addCleanup(shutil.rmtree, bin_dir, ignore_errors=True)
        for tool in ("taskset", "git"):
            if shutil.which(tool):
                os.symlink(shutil.which(tool), os.path.join(bin_dir, tool))
        run = ResultSet(self, tiny_spec(1), env=dict(os.environ, PATH=bin_dir))
        self.assertEqual(run.completed.returncode, 0, run.completed.stderr)
        self.assertIn("sockperf not installed", run.completed.stderr)
        [record] = run.records()
        self.check_load_generator_measured(record)
        self.assertEqual(record["sockperf_client"], {"error": "sockperf is not installed"})
        self.assertNotIn("sockperf_msgs_per_s", results_mod.repetition_metrics(record))
        validate(self, [record])


if __name__ == "__main__":
    unittest.main()
