"""echolab-bench end to end on a tiny spec: a complete, schema-valid result set, and a cell
whose server cannot start recorded as failed while the run goes on."""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import schema_check  # noqa: E402
from bench_harness import BUILD_DIR, REPO, run_bench  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "bench"))
from runner import cell as cell_mod  # noqa: E402
from runner import engines as engines_mod  # noqa: E402
from runner import spec as spec_mod  # noqa: E402

SERVER = os.path.join(BUILD_DIR, "servers", "echolab-server")

# A made-up engine table: groups are resolved from the rows' data, never from names.
FAKE_TABLE = [
    {"name": "one", "serves": "streams", "concurrency": "one-at-a-time", "available": True},
    {"name": "loop", "serves": "streams", "concurrency": "multiplexed", "available": True},
    {"name": "ring", "serves": "streams", "concurrency": "multiplexed", "available": False},
    {"name": "dgram-a", "serves": "datagrams", "concurrency": "one-at-a-time", "available": True},
    {"name": "dgram-b", "serves": "datagrams", "concurrency": "pool", "available": True},
]

TINY_SPEC = {
    "name": "tiny",
    "repetitions": 1,
    "defaults": {"warmup_s": 0.2, "duration_s": 1.0, "connections": 2, "timeout_s": 1.0},
    "matrix": [
        {"engine": "no-such-engine"},
        {"engine": ["select", "thread"], "mode": "closed"},
    ],
}


class SpecExpansion(unittest.TestCase):
    def test_groups_expand_as_products_and_engine_groups_expand(self):
        spec = {"matrix": [{"engine": "@datagram", "transport": "udp", "connections": [1, 4]}]}
        cells = spec_mod.expand_cells(spec, engine_table=FAKE_TABLE)
        self.assertEqual(len(cells), 4)
        self.assertEqual({c["engine"] for c in cells}, {"dgram-a", "dgram-b"})
        self.assertEqual(sorted({c["connections"] for c in cells}), [1, 4])

    def test_groups_follow_the_rows_and_skip_what_is_not_available(self):
        def names(group):
            return [c["engine"] for c in spec_mod.expand_cells({"matrix": [{"engine": group}]},
                                                               engine_table=FAKE_TABLE)]
        self.assertEqual(names("@stream"), ["one", "loop"])
        self.assertEqual(names("@multiplexed"), ["loop"])
        self.assertEqual(names("@one-at-a-time"), ["one"])

    def test_unknown_group_and_missing_table_are_spec_errors(self):
        with self.assertRaisesRegex(spec_mod.SpecError, "unknown engine group"):
            spec_mod.expand_cells({"matrix": [{"engine": "@nonsense"}]}, engine_table=FAKE_TABLE)
        with self.assertRaisesRegex(spec_mod.SpecError, "engine table"):
            spec_mod.expand_cells({"matrix": [{"engine": "@stream"}]})

    def test_the_server_prints_its_table_as_json(self):
        table = engines_mod.load_engine_table(SERVER)
        self.assertTrue(table)
        for row in table:
            for key in ("name", "pattern", "serves", "transports", "concurrency", "cap_option",
                        "connections_in_children", "descriptors_below", "available"):
                self.assertIn(key, row, row.get("name"))

    def test_unknown_keys_are_rejected(self):
        with self.assertRaises(spec_mod.SpecError):
            spec_mod.expand_cells({"matrix": [{"engines": ["select"]}]})

    def test_every_shipped_spec_expands(self):
        names = sorted(f[:-5] for f in os.listdir(spec_mod.SPEC_DIR) if f.endswith(".json"))
        self.assertIn("quick", names)
        for name in names:
            cells = spec_mod.expand_cells(spec_mod.load_spec(name), engine_table=engines_mod.load_engine_table(SERVER))
            self.assertTrue(cells, name)
            ids = [spec_mod.cell_id(c) for c in cells]
            self.assertEqual(len(ids), len(set(ids)), f"{name}: cell ids must be unique")

    def test_server_args_make_a_variant_of_the_engine(self):
        spec = {"matrix": [{"engine": "prefork", "mode": "connect", "server_args": ["", "--accept-lock"]}]}
        cells = spec_mod.expand_cells(spec)
        self.assertEqual([c["server_args"] for c in cells], ["", "--accept-lock"])
        ids = [spec_mod.cell_id(c) for c in cells]
        self.assertEqual(ids, ["prefork_tcp_connect_c16_s64", "prefork_tcp_connect_c16_s64_accept-lock"])
        command = cell_mod.server_command({"server": "echolab-server"}, cells[1], "stats.json", "127.0.0.1:0")
        self.assertEqual(command[-1], "--accept-lock")
        self.assertNotIn("--accept-lock", cell_mod.server_command({"server": "echolab-server"}, cells[0],
                                                                  "stats.json", "127.0.0.1:0"))

    def test_server_args_may_not_take_over_what_the_runner_sets(self):
        for bad in ("--listen 127.0.0.1:1", "--stats-json=x", "'unclosed"):
            with self.assertRaises(spec_mod.SpecError):
                spec_mod.expand_cells({"matrix": [{"engine": "select", "server_args": bad}]})
        with self.assertRaisesRegex(spec_mod.SpecError, "must be a string"):
            spec_mod.expand_cells({"matrix": [{"engine": "select", "server_args": [["--x"]]}]})

    def test_quick_spec_has_every_engine(self):
        table = engines_mod.load_engine_table(SERVER)
        engines = {c["engine"] for c in spec_mod.expand_cells(spec_mod.load_spec("quick"), engine_table=table)}
        for row in table:
            if row["available"]:
                self.assertIn(row["name"], engines)


class TinyRun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="echolab-bench-test-")
        cls.completed = run_bench(TINY_SPEC, cls.tmp.name, "tiny", timeout=240)
        cls.out = os.path.join(cls.tmp.name, "tiny")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def load(self, relative):
        with open(os.path.join(self.out, relative)) as f:
            return json.load(f)

    def test_run_completes_despite_the_failed_cell(self):
        self.assertEqual(self.completed.returncode, 0, self.completed.stderr)
        manifest = self.load("manifest.json")
        statuses = {c["id"].split("_")[0]: c["status"] for c in manifest["cells"]}
        self.assertEqual(statuses, {"no-such-engine": "failed", "select": "ok", "thread": "ok"})

    def test_failed_cell_says_why(self):
        manifest = self.load("manifest.json")
        failed = [c for c in manifest["cells"] if c["status"] == "failed"]
        self.assertEqual(len(failed), 1)
        self.assertIn("unknown engine", failed[0]["reason"])
        self.assertIn("unknown engine", self.load(failed[0]["file"])["reason"])

    def test_ok_cells_carry_load_server_stats_and_resources(self):
        for entry in self.load("manifest.json")["cells"]:
            if entry["status"] != "ok":
                continue
            record = self.load(entry["file"])
            stats = record["server"]["stats"]
            self.assertGreater(stats["counters"]["messages"], 0)
            self.assertEqual(stats["counters"]["protocol_errors"], 0)
            self.assertEqual(record["server"]["exit"]["status"], 0)
            self.assertEqual(record["server"]["exit"]["leftover_processes"], 0)
            self.assertGreater(record["server"]["resources"]["peak_rss_bytes"], 0)
            self.assertIn("config", record["loadgen"])

    def test_result_set_is_schema_valid(self):
        try:
            validators = schema_check.load_validators()
        except ImportError:
            self.skipTest("python3-jsonschema is not installed")
        manifest = self.load("manifest.json")
        validators["bench-manifest"].validate(manifest)
        for entry in manifest["cells"]:
            record = self.load(entry["file"])
            validators["bench-cell"].validate(record)
            if "loadgen" in record and "loadgen-result" in validators:
                validators["loadgen-result"].validate(record["loadgen"])


if __name__ == "__main__":
    unittest.main()
