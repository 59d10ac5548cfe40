"""Cells of several generators (spec key "generators"): the spec's checks, and echolab-bench on
one tiny epoll cell at 1 and 2 generators, the second under mpirun (each rank in a network
namespace of its own as root); as root, the same again as the plain user nobody, whose ranks
share loopback and say so; and a build without echolab-loadgen-mpi refused in one line."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import schema_check  # noqa: E402
from bench_harness import BUILD_DIR, REPO, run_bench  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "bench"))
from compare import load as compare_load  # noqa: E402
from runner import cell as cell_mod  # noqa: E402
from runner import spec as spec_mod  # noqa: E402

SERVER = os.path.join(BUILD_DIR, "servers", "echolab-server")
LOADGEN = os.path.join(BUILD_DIR, "loadgen", "echolab-loadgen")
LOADGEN_MPI = os.path.join(BUILD_DIR, "loadgen", "echolab-loadgen-mpi")
NOBODY = 65534


def expand(group):
    return spec_mod.expand_cells({"matrix": [group]})


class GeneratorsKey(unittest.TestCase):
    def test_the_count_is_a_whole_number_from_one(self):
        for bad in (0, -2, 1.5, "2", True, None):
            with self.subTest(generators=bad):
                with self.assertRaisesRegex(spec_mod.SpecError, "generators must be a whole number from 1"):
                    expand({"engine": "epoll", "generators": bad})

    def test_every_generator_needs_a_connection_per_thread(self):
        with self.assertRaisesRegex(spec_mod.SpecError, "2 connections over 4 generators leave some with fewer"):
            expand({"engine": "epoll", "connections": 2, "generators": 4})
        with self.assertRaisesRegex(spec_mod.SpecError, "loadgen_threads 2"):
            expand({"engine": "epoll", "connections": 4, "generators": 4, "loadgen_threads": 2})

    def test_one_generator_is_the_default_and_more_name_the_cell(self):
        cells = expand({"engine": "epoll", "connections": 8, "generators": [1, 4]})
        self.assertEqual([c["generators"] for c in cells], [1, 4])
        self.assertEqual([spec_mod.cell_id(c) for c in cells],
                         ["epoll_tcp_closed_c8_s64", "epoll_tcp_closed_c8_s64_g4"])
        self.assertEqual(expand({"engine": "epoll"})[0]["generators"], 1)

    def test_a_build_without_mpi_or_a_machine_without_mpirun_is_one_clear_error(self):
        cells = expand({"engine": "epoll", "connections": 8, "generators": [1, 2]})
        with self.assertRaisesRegex(spec_mod.SpecError, "asks for 2 generators, and echolab-loadgen-mpi was not built"):
            spec_mod.check_generators_available(cells, {"loadgen_mpi": None, "mpirun": "/usr/bin/mpirun"})
        with self.assertRaisesRegex(spec_mod.SpecError, "no mpirun on PATH"):
            spec_mod.check_generators_available(cells, {"loadgen_mpi": LOADGEN_MPI, "mpirun": None})
        spec_mod.check_generators_available(cells[:1], {"loadgen_mpi": None, "mpirun": None})

    def test_one_generator_compares_with_an_older_cell_without_the_key(self):
        cell = expand({"engine": "epoll", "connections": 8})[0]
        older = {k: v for k, v in cell.items() if k != "generators"}
        self.assertEqual(compare_load.identity(cell), compare_load.identity(older))
        self.assertNotEqual(compare_load.identity(dict(cell, generators=2)), compare_load.identity(older))

    def test_the_mpi_load_is_the_same_options_under_mpirun(self):
        cell = expand({"engine": "epoll", "connections": 8, "generators": 2})[0]
        binaries = {"loadgen": "lg", "loadgen_mpi": "lg-mpi", "mpirun": "mpirun"}
        plain = cell_mod.loadgen_command(binaries, cell, "10.77.0.1:7", "out.json")
        hosts = {"count": 2, "network": "namespaces", "prefix": "p"}
        command = cell_mod.load_command(binaries, cell, "10.77.0.1:7", "out.json", hosts)
        self.assertEqual(command[:3], ["mpirun", "-np", "2"])
        start = command.index("lg-mpi")
        self.assertEqual(command[start + 1:], plain[1:] + ["--netns", "p-gen%r"])
        self.assertEqual(cell_mod.load_command(binaries, dict(cell, generators=1), "t", "o",
                                               dict(hosts, count=1, prefix=None)),
                         cell_mod.loadgen_command(binaries, cell, "t", "o"))


SPEC = {"name": "generators", "repetitions": 1,
        "defaults": {"warmup_s": 0.3, "duration_s": 0.8, "timeout_s": 1.0, "connections": 4},
        "matrix": [{"engine": "epoll", "mode": "closed", "generators": [1, 2]}]}


def namespaces():
    if not shutil.which("ip"):
        return set()
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


class TinyRun(unittest.TestCase):
    """The runner as whoever runs the test: as root the ranks in namespaces."""
    user_prefix = ()
    expected_network = "namespaces" if os.geteuid() == 0 else "loopback"

    @classmethod
    def setUpClass(cls):
        if not os.access(LOADGEN_MPI, os.X_OK):
            raise unittest.SkipTest("echolab-loadgen-mpi was not built (no MPI)")
        if not shutil.which("mpirun"):
            raise unittest.SkipTest("no mpirun on PATH")
        cls.tmp = tempfile.mkdtemp(prefix="echolab-bench-generators-")
        os.chmod(cls.tmp, 0o777)  # the plain user's run writes here too
        cls.namespaces_before = namespaces()
        cls.completed = run_bench(SPEC, cls.tmp, "generators", timeout=150, prefix=cls.user_prefix,
                                  env=dict(os.environ, TMPDIR=cls.tmp, HOME=cls.tmp))
        cls.out = os.path.join(cls.tmp, "generators")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def record(self, suffix):
        with open(os.path.join(self.out, "manifest.json")) as f:
            manifest = json.load(f)
        entry = next(e for e in manifest["cells"] if e["id"] == f"epoll_tcp_closed_c4_s64{suffix}_r0")
        with open(os.path.join(self.out, entry["file"])) as f:
            return json.load(f)

    def test_both_cells_run_and_the_merged_count_is_the_servers(self):
        self.assertEqual(self.completed.returncode, 0, self.completed.stderr)
        for suffix, generators in (("", 1), ("_g2", 2)):
            record = self.record(suffix)
            self.assertEqual(record["status"], "ok", record.get("reason"))
            loadgen = record["loadgen"]
            self.assertEqual(loadgen["errors"]["total"], 0, loadgen["errors"])
            self.assertEqual(loadgen["messages"]["received"] + loadgen["messages"]["warmup_messages"],
                             record["server"]["stats"]["counters"]["messages"])
            self.assertEqual(record["cell"]["generators"], generators)

    def test_the_record_keeps_the_per_rank_breakdown_and_where_the_ranks_ran(self):
        record = self.record("_g2")
        ranks = record["loadgen"]["generators"]["ranks"]
        self.assertEqual([r["rank"] for r in ranks], [0, 1])
        self.assertEqual(sum(r["received"] for r in ranks), record["loadgen"]["messages"]["received"])
        self.assertEqual(record["generators"]["count"], 2)
        self.assertEqual(record["generators"]["network"], self.expected_network, record["generators"])
        if self.expected_network == "loopback":
            self.assertIn("not root", record["generators"]["note"])
        self.assertNotIn("generators", self.record(""))

    def test_the_namespaces_are_removed(self):
        self.assertEqual({n for n in namespaces() - self.namespaces_before if n.startswith("echolab-cell-")}, set())

    def test_the_generators_figure_is_drawn(self):
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            self.skipTest("python3-matplotlib is not installed")
        figures = os.path.join(self.tmp, f"figures-{type(self).__name__}")
        run = subprocess.run([sys.executable, os.path.join(REPO, "plots", "echolab-plot"), self.out, "--out", figures],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertIn("throughput_p99_vs_generators: throughput_p99_vs_generators.png", run.stdout)
        self.assertGreater(os.path.getsize(os.path.join(figures, "throughput_p99_vs_generators.png")), 0)

    def test_result_set_is_schema_valid(self):
        try:
            validators = schema_check.load_validators()
        except ImportError:
            self.skipTest("python3-jsonschema is not installed")
        for suffix in ("", "_g2"):
            validators["bench-cell"].validate(self.record(suffix))


class TinyRunAsPlainUser(TinyRun):
    """As root, the same run as the user nobody: no namespaces, the ranks on loopback."""
    user_prefix = ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")
    expected_network = "loopback"

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("not root: TinyRun is the plain user's run")
        if not shutil.which("setpriv"):
            raise unittest.SkipTest("needs setpriv (util-linux)")
        for path in (LOADGEN_MPI, SERVER, LOADGEN):
            if subprocess.run([*cls.user_prefix, "test", "-x", path], timeout=30).returncode != 0:
                raise unittest.SkipTest(f"uid {NOBODY} cannot run {path}")
        super().setUpClass()


class WithoutMpi(unittest.TestCase):
    def test_a_build_without_echolab_loadgen_mpi_is_refused_in_one_line(self):
        with tempfile.TemporaryDirectory(prefix="echolab-bench-nompi-") as scratch:
            build = os.path.join(scratch, "bin")
            os.mkdir(build)
            for program in (SERVER, LOADGEN):  # an installed bin/ without echolab-loadgen-mpi
                os.symlink(program, os.path.join(build, os.path.basename(program)))
            spec = dict(SPEC, name="nompi")
            spec_path = os.path.join(scratch, "nompi.json")
            with open(spec_path, "w") as f:
                json.dump(spec, f)
            run = subprocess.run([sys.executable, os.path.join(REPO, "bench", "echolab-bench"), "--spec", spec_path,
                                  "--out", scratch, "--build-dir", build], capture_output=True, text=True,
                                 timeout=60)
            self.assertNotEqual(run.returncode, 0)
            self.assertEqual(run.stderr.strip().splitlines(), [
                "echolab-bench: epoll_tcp_closed_c4_s64_g2 asks for 2 generators, and echolab-loadgen-mpi was not "
                "built (CMake found no MPI; Debian: apt-get install openmpi-bin libopenmpi-dev, then configure again)"])
            self.assertFalse(os.path.exists(os.path.join(scratch, "nompi")))


if __name__ == "__main__":
    unittest.main()
