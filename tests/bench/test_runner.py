"""echolab-bench end to end on a tiny spec: a complete, schema-valid result set, and a cell
whose server cannot start recorded as failed while the run goes on."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import unittest.mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import schema_check  # noqa: E402
from bench_harness import BUILD_DIR, REPO, ResultSetCase, run_bench  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "bench"))
from runner import cell as cell_mod  # noqa: E402
from runner import engines as engines_mod  # noqa: E402
from runner import main as main_mod  # noqa: E402
from runner import procfs  # noqa: E402
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


class TinyRun(ResultSetCase):
    SPEC = TINY_SPEC

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
        self.check_schemas()


def unlimited_stream_engine():
    """A multiplexed stream engine with no cap and no descriptor limit, from the registry."""
    for row in engines_mod.load_engine_table(SERVER):
        if (row["available"] and row["serves"] == "streams" and row["concurrency"] == "multiplexed"
                and row["descriptors_below"] is None and row["cap_option"] is None):
            return row["name"]
    raise unittest.SkipTest("no uncapped multiplexed stream engine in the registry")


class ServerTreeSampling(unittest.TestCase):
    """The sampler that runs beside every measured run finds the server's process tree by
    reading the stat of PIDs above the server's, each once, not every process on the
    machine every 100 ms: that walk stalled the server it measured (epoll's p99 at 14k
    msgs/s went from about 0.2 ms to 1.5 ms)."""

    def setUp(self):
        # A tree two levels deep: sh -> (sh -> sleep), sleep; a sentinel file says when every
        # process is there.
        self.scratch = tempfile.TemporaryDirectory(prefix="echolab-tree-")
        self.ready = os.path.join(self.scratch.name, "ready")
        script = "sh -c 'sleep 30 & touch \"$1\"; wait' inner \"$1\" & sleep 30 & wait"
        self.root = subprocess.Popen(["/bin/sh", "-c", script, "outer", self.ready], start_new_session=True)
        self.wait_for(lambda: os.path.exists(self.ready) and len(procfs.process_tree(self.root.pid)) == 4)

    def tearDown(self):
        cell_mod.kill_group(self.root)
        self.scratch.cleanup()

    def wait_for(self, predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not predicate():
            self.assertLess(time.monotonic(), deadline, "the test's process tree did not come up")
            time.sleep(0.02)

    def reading_stats(self):
        """A TreeFinder.tree() that records whose stat it read."""
        read = []
        original = procfs._stat_fields

        def recording(pid):
            read.append(pid)
            return original(pid)

        patcher = unittest.mock.patch.object(procfs, "_stat_fields", recording)
        patcher.start()
        self.addCleanup(patcher.stop)
        return read

    def test_it_finds_the_tree_the_full_walk_finds(self):
        finder = procfs.TreeFinder(self.root.pid)
        self.assertEqual(sorted(finder.tree()), sorted(procfs.process_tree(self.root.pid)))

    def test_it_reads_only_pids_above_the_root_and_each_once(self):
        finder = procfs.TreeFinder(self.root.pid)
        read = self.reading_stats()
        first = finder.tree()
        self.assertTrue(read, "it read nothing")
        self.assertTrue(all(pid > self.root.pid for pid in read), read)
        self.assertIn(max(first), read)
        read.clear()
        finder.tree()
        self.assertTrue(all(pid not in first for pid in read), "it read a known process's stat again")

    def test_a_process_that_exits_leaves_it_and_a_stranger_stays_out(self):
        finder = procfs.TreeFinder(self.root.pid)
        before = finder.tree()
        sleeper = next(pid for pid in before if procfs._read(f"/proc/{pid}/comm") == "sleep\n")
        os.kill(sleeper, signal.SIGKILL)
        self.wait_for(lambda: sleeper not in procfs.process_tree(self.root.pid))
        self.assertEqual(sorted(finder.tree()), sorted(set(before) - {sleeper}))
        # Started after the root, so looked at, but not its descendant.
        stranger = subprocess.Popen(["sleep", "30"])
        self.addCleanup(stranger.wait)
        self.addCleanup(stranger.kill)
        self.assertGreater(stranger.pid, self.root.pid)
        self.assertNotIn(stranger.pid, finder.tree())

    def test_after_a_pid_wrap_every_process_is_looked_at(self):
        finder = procfs.TreeFinder(self.root.pid)
        read = self.reading_stats()
        with unittest.mock.patch.object(procfs, "_last_pid", lambda: self.root.pid - 1):
            tree = finder.tree()
        self.assertTrue(any(pid < self.root.pid for pid in read), "a wrapped PID space was not walked whole")
        self.assertEqual(sorted(tree), sorted(procfs.process_tree(self.root.pid)))


class SamplerStaysOutOfTheMeasuredWindow(unittest.TestCase):
    """No sample is taken while the load is measured (a sample's /proc reads land on the
    latency): the window comes from the load generator's --window-file; before and after it,
    the sampler samples, and the peaks come from there."""

    def sample_times(self, window=None, write_after=0.0):
        """The times of the samples of a 1.1 s TreeSampler over this process, with `window`
        (start, end, monotonic seconds) written to its window file `write_after` s in."""
        taken = []
        original = procfs.snapshot

        def recording(root, tree=None):
            taken.append(time.monotonic())
            return original(root, tree)

        with tempfile.TemporaryDirectory() as scratch:
            window_file = os.path.join(scratch, "window.json")
            start = time.monotonic()
            with unittest.mock.patch.object(procfs, "snapshot", recording):
                with procfs.TreeSampler(os.getpid(), period=0.02, window_file=window_file) as sampler:
                    written = window is None
                    while time.monotonic() < start + 1.1:
                        if not written and time.monotonic() >= start + write_after:
                            with open(window_file, "w") as f:
                                json.dump({"clock": "CLOCK_MONOTONIC", "start_s": window[0] - 0.1,
                                           "measure_start_s": window[0], "send_end_s": window[1]}, f)
                            written = True
                        time.sleep(0.01)
        return taken[1:-1], sampler  # the start and end snapshots are outside the run

    def test_no_sample_inside_the_window_and_sampling_around_it(self):
        start = time.monotonic()
        window = (start + 0.3, start + 0.7)
        taken, sampler = self.sample_times(window, write_after=0.1)
        quiet = (window[0] - procfs.TreeSampler.MARGIN_S[0], window[1] + procfs.TreeSampler.MARGIN_S[1])
        self.assertEqual([t for t in taken if quiet[0] + 0.005 < t < quiet[1]], [], "sampled inside the window")
        self.assertTrue(any(t < quiet[0] for t in taken), "the warm-up was not sampled")
        self.assertTrue(any(t >= quiet[1] for t in taken), "sampling did not resume after the window")
        result = sampler.result()
        self.assertEqual(result["samples"], len(taken) + 1)  # and the end snapshot
        self.assertFalse(result["measured_window_sampled"])
        self.assertGreater(result["peak_rss_bytes"], 0)
        self.assertGreaterEqual(result["root_rss_high_water_bytes"], sampler.end["rss_bytes"])

    def test_a_run_bounded_by_a_message_count_is_quiet_to_its_end(self):
        start = time.monotonic()
        taken, _ = self.sample_times((start + 0.3, None), write_after=0.1)
        self.assertEqual([t for t in taken if t > start + 0.3], [])

    def test_without_a_window_it_samples_throughout_and_says_so(self):
        taken, sampler = self.sample_times()
        self.assertGreater(len(taken), 20)
        self.assertTrue(sampler.result()["measured_window_sampled"])

    def test_the_runner_asks_for_the_window_only_of_a_generator_that_writes_one(self):
        binaries = {"loadgen": os.path.join(BUILD_DIR, "loadgen", "echolab-loadgen")}
        if not os.access(binaries["loadgen"], os.X_OK):
            self.skipTest("no echolab-loadgen built at " + binaries["loadgen"])
        self.assertTrue(main_mod._takes_option(binaries["loadgen"], "--window-file"))
        self.assertFalse(main_mod._takes_option(binaries["loadgen"], "--no-such-option"))
        self.assertFalse(main_mod._takes_option("/nonexistent/echolab-loadgen", "--window-file"))


class LoadTimeout(unittest.TestCase):
    """A load that outlives its budget goes with everything it started: mpirun's ranks, killed
    with mpirun alone, would run on orphaned into the next cell."""

    def test_everything_it_started_is_killed(self):
        with tempfile.TemporaryDirectory() as scratch:
            pid_file = os.path.join(scratch, "grandchild.pid")
            # The child in a process group of its own, as mpirun puts each rank.
            command = [sys.executable, "-c", "import subprocess, sys\n"
                       "child = subprocess.Popen(['sleep', '60'], process_group=0)\n"
                       "open(sys.argv[1], 'w').write(str(child.pid))\n"
                       "child.wait()\n", pid_file]
            with self.assertRaises(subprocess.TimeoutExpired):
                cell_mod.run_group(command, 1.0, stdout=subprocess.DEVNULL)
            with open(pid_file) as f:
                grandchild = int(f.read())
            deadline = time.monotonic() + 5
            state = None
            while time.monotonic() < deadline:
                try:
                    with open(f"/proc/{grandchild}/stat") as f:
                        state = f.read().rsplit(")", 1)[1].split()[0]
                except FileNotFoundError:
                    state = None
                if state in (None, "Z"):  # gone, or killed and waiting for init to reap it
                    break
                time.sleep(0.05)
            self.assertIn(state, (None, "Z"), "the load's child outlived it")

    def test_a_load_within_its_budget_returns_its_status_and_output(self):
        done = cell_mod.run_group(["/bin/sh", "-c", "echo oops >&2; exit 3"], 10.0, stderr=subprocess.PIPE)
        self.assertEqual((done.returncode, done.stderr), (3, b"oops\n"))


class FileLimits(unittest.TestCase):
    """Under a soft RLIMIT_NOFILE of 256 (hard 4096): a cell of 300 connections runs with the
    soft limit raised for its server and load generator, and says so; a cell of 5,000 cannot
    (the hard limit is too low) and is recorded as failed with that one line."""

    SOFT, HARD = 256, 4096

    @classmethod
    def setUpClass(cls):
        if not shutil.which("prlimit"):
            raise unittest.SkipTest("prlimit (util-linux) is not installed")
        cls.tmp = tempfile.TemporaryDirectory(prefix="echolab-bench-test-")
        spec = {"name": "nofile", "repetitions": 1,
                "defaults": {"warmup_s": 0.2, "duration_s": 0.5, "timeout_s": 1.0, "mode": "open", "rate": 3000},
                "matrix": [{"engine": unlimited_stream_engine(), "connections": [300, 5000]}]}
        cls.completed = run_bench(spec, cls.tmp.name, "nofile", timeout=120,
                                  prefix=["prlimit", f"--nofile={cls.SOFT}:{cls.HARD}"])
        cls.out = os.path.join(cls.tmp.name, "nofile")
        with open(os.path.join(cls.out, "manifest.json")) as f:
            cls.manifest = json.load(f)
        cls.entries = {entry["id"].split("_")[3]: entry for entry in cls.manifest["cells"]}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def record(self, connections):
        with open(os.path.join(self.out, self.entries[f"c{connections}"]["file"])) as f:
            return json.load(f)

    def test_the_soft_limit_is_raised_for_the_cell_and_recorded(self):
        self.assertEqual(self.completed.returncode, 0, self.completed.stderr)
        record = self.record(300)
        self.assertEqual(record["status"], "ok", record.get("reason"))
        self.assertEqual(record["limits"]["nofile"], {"soft": 364, "hard": self.HARD, "needed": 364,
                                                      "raised_from": self.SOFT})
        self.assertEqual(self.entries["c300"]["nofile_raised"], {"from": self.SOFT, "to": 364})
        self.assertEqual(record["loadgen"]["errors"]["total"], 0, record["loadgen"]["errors"])
        self.assertGreaterEqual(record["server"]["stats"]["connections_peak"], 300)
        # The runner's own limit is put back after the cell: the manifest shows it unchanged.
        self.assertEqual(self.manifest["limits"]["nofile"]["soft"], self.SOFT)

    def test_a_hard_limit_too_low_fails_the_cell_with_one_line(self):
        record = self.record(5000)
        self.assertEqual(record["status"], "failed")
        self.assertEqual(len(record["reason"].splitlines()), 1, record["reason"])
        self.assertIn(f"RLIMIT_NOFILE hard limit {self.HARD} is below the 5064 descriptors", record["reason"])
        self.assertEqual(record["limits"]["nofile"]["hard"], self.HARD)

    def test_memory_per_connection_is_in_the_cell(self):
        memory = self.record(300)["server"]["memory_per_connection"]
        self.assertEqual(memory["connections"], 300)
        self.assertGreater(memory["rss_bytes"], 0)
        self.assertEqual(memory["rss_bytes"], round(memory["peak_rss_bytes"] / 300))
        self.assertGreaterEqual(memory["connections_held_at_peak"], 300)
        self.assertIsNotNone(memory["rss_added_bytes"])

    def test_result_set_is_schema_valid(self):
        try:
            validators = schema_check.load_validators()
        except ImportError:
            self.skipTest("python3-jsonschema is not installed")
        validators["bench-manifest"].validate(self.manifest)
        for connections in (300, 5000):
            validators["bench-cell"].validate(self.record(connections))


if __name__ == "__main__":
    unittest.main()
