#!/usr/bin/python3
"""echolab-loadgen-mpi under Open MPI's mpirun: 4 ranks on this host (shared-memory
transport) against one echolab-server.

- the merged result: its message count is the server's own counter; its histograms equal,
  bucket for bucket, `echolab-loadgen merge` of the ranks' own results (--rank-json); the
  per-rank breakdown adds up to it; the start skew is reported and judged against
  --max-start-skew (here 1 us, which no real start meets);
- the merged interval log (--hlog) carries every tag (corrected, uncorrected, send_lag), each
  tag's count the sum of the ranks' own logs (--rank-hlog), and is what `echolab-loadgen
  merge` makes of those logs;
- a rank that cannot reach its target stops every rank before the start, in one line naming
  that rank and its host, in bounded time; a mistake every rank makes is one line too;
- a rank killed during the run takes the job down at once (mpirun names the rank), and no
  result is written.
- as root, 4 ranks each in a network namespace of its own (scripts/netns-hosts.sh, --netns)
  reach the server in another from 4 addresses, and the counts still match the server's.

    mpi_test.py MPIRUN LOADGEN_MPI LOADGEN SERVER
    mpi_test.py --plain-user MPIRUN LOADGEN_MPI LOADGEN SERVER
                 as root: the merged run again as the unprivileged user nobody (setpriv),
                 so that it is known to run both as root and as a plain user
    mpi_test.py --not-built      (exits 77: skipped, saying why)
"""
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import zlib

from echo_server import EchoServer

SKIP = 77
if sys.argv[1:2] == ["--not-built"]:
    print("skipped: echolab-loadgen-mpi was not built (CMake found no MPI, or ECHOLAB_WITH_MPI is OFF; "
          "Debian: apt-get install openmpi-bin libopenmpi-dev)")
    sys.exit(SKIP)
PLAIN_USER = sys.argv[1:2] == ["--plain-user"]
if PLAIN_USER:
    sys.argv.pop(1)
MPIRUN, LOADGEN_MPI, LOADGEN, SERVER = (sys.argv.pop(1) for _ in range(4))
RANKS = 4
# A run's own wall time is under 2 s; mpirun's launch adds a few seconds on a busy machine.
RUN_DEADLINE = 60
# --plain-user: the unprivileged user the merged run is repeated as (nobody, nogroup).
NOBODY = 65534
# Set by --plain-user for the run it starts: the user it must be running as.
EXPECTED_UID = "ECHOLAB_MPI_TEST_EXPECTED_UID"


def mpirun_flags():
    # Open MPI 4.1 (Debian 12): --oversubscribe runs 4 ranks on fewer cores; btl self,vader
    # keeps MPI's own traffic in shared memory ("vader" became "sm" in Open MPI 5).
    flags = ["--oversubscribe", "--mca", "btl", "self,vader"]
    if os.geteuid() == 0:
        flags.append("--allow-run-as-root")  # Open MPI refuses root without it
    return flags


def mpirun(*app_contexts, timeout=RUN_DEADLINE):
    """mpirun with each (ranks, argv) context (several: MPMD, joined by ':'). Returns the
    completed process and its wall time; the whole process group is killed past `timeout`."""
    command = [MPIRUN, *mpirun_flags()]
    for i, (ranks, argv) in enumerate(app_contexts):
        command += ([":"] if i else []) + ["-np", str(ranks), *argv]
    began = time.monotonic()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise AssertionError(f"mpirun did not end within {timeout} s: {command}")
    return subprocess.CompletedProcess(command, process.returncode, out, err), time.monotonic() - began


def our_lines(err):
    return [line for line in err.splitlines() if line.startswith("echolab-loadgen-mpi: ")]


def closed_port():
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rank_processes(mpirun_pid):
    """{rank: pid} of the ranks mpirun started on this host (its children, by their
    OMPI_COMM_WORLD_RANK)."""
    ranks = {}
    with open(f"/proc/{mpirun_pid}/task/{mpirun_pid}/children") as f:
        children = [int(pid) for pid in f.read().split()]
    for pid in children:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
        except OSError:
            continue
        if b"OMPI_COMM_WORLD_RANK" in environ:
            ranks[int(environ[b"OMPI_COMM_WORLD_RANK"])] = pid
    return ranks


def leb128_counts(payload):
    """The counts of an HdrHistogram V2 payload: ZigZag LEB128-64b9B values, a negative one a
    run of that many zeros (which adds nothing to a total)."""
    pos = 0
    while pos < len(payload):
        value, shift = 0, 0
        for byte_index in range(9):
            byte = payload[pos]
            pos += 1
            if byte_index == 8:  # the ninth byte carries 8 bits
                value |= byte << 56
                break
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        yield (value >> 1) ^ -(value & 1)


def histogram_total(encoded):
    """The total count of one V2 compressed histogram (base64, as on a .hlog line)."""
    raw = base64.b64decode(encoded)
    assert int.from_bytes(raw[:4], "big") == 0x1C849314, "not a V2 compressed histogram"
    inner = zlib.decompress(raw[8:])
    assert int.from_bytes(inner[:4], "big") == 0x1C849313, "not a V2 histogram inside"
    length = int.from_bytes(inner[4:8], "big")
    return sum(count for count in leb128_counts(inner[40:40 + length]) if count > 0)


def tag_totals(hlog_path):
    """{tag: the count of all its intervals} of an interval log."""
    totals = {}
    with open(hlog_path) as f:
        for line in f:
            if not line.startswith("Tag="):
                continue
            fields = line.strip().split(",")
            tag = fields[0][len("Tag="):]
            totals[tag] = totals.get(tag, 0) + histogram_total(fields[-1])
    return totals


class MergedRun(unittest.TestCase):
    def test_counts_match_the_server_and_the_ranks_merged_bucket_for_bucket(self):
        if EXPECTED_UID in os.environ:
            self.assertEqual(os.geteuid(), int(os.environ[EXPECTED_UID]), "not the plain user --plain-user asked for")
        with tempfile.TemporaryDirectory() as scratch:
            stats_path = os.path.join(scratch, "stats.json")
            out = os.path.join(scratch, "merged.json")
            merged_log = os.path.join(scratch, "merged.hlog")
            with EchoServer(SERVER, "epoll", extra_args=["--stats-json", stats_path]) as server:
                run, _ = mpirun((RANKS, [LOADGEN_MPI, "--target", server.address, "--mode", "open", "--rate", "2000",
                                         "-c", "8", "--warmup", "0.3s", "--duration", "1s", "--timeout", "1s",
                                         "--interval", "250ms", "--max-start-skew", "1us", "--json", out,
                                         "--hlog", merged_log, "--rank-hlog", os.path.join(scratch, "rank-%r.hlog"),
                                         "--rank-json", os.path.join(scratch, "rank-%r.json"),
                                         "--quiet", "--no-status"]))
                server.stop()  # the server writes its counters as it exits
            self.assertEqual(run.returncode, 0, run.stderr)
            with open(out) as f:
                merged = json.load(f)
            with open(stats_path) as f:
                stats = json.load(f)

            messages = merged["messages"]
            self.assertEqual(merged["errors"]["total"], 0, merged["errors"])
            self.assertEqual(messages["warmup_failures"], 0)
            self.assertGreater(messages["received"], 0)
            # Every message the server echoed came back to one of the ranks, warm-up included.
            self.assertEqual(messages["received"] + messages["warmup_messages"], stats["counters"]["messages"])

            generators = merged["generators"]
            self.assertEqual(generators["count"], RANKS)
            self.assertEqual(generators["split"],
                             "8 connections, 2000 msgs/s over 4 generators: ranks 0-3 2 connections, 500 msgs/s each")
            self.assertIn(generators["split"], run.stderr)
            ranks = generators["ranks"]
            self.assertEqual([r["rank"] for r in ranks], list(range(RANKS)))
            self.assertEqual(sum(r["received"] for r in ranks), messages["received"])
            self.assertEqual(merged["latency"]["corrected"]["count"], messages["received"])
            self.assertEqual(merged["throughput"]["asked_msgs_per_s"], 2000)

            # The start skew: reported per rank and overall, and judged.
            lateness = [r["start_late_us"] for r in ranks]
            self.assertEqual(generators["start_skew_us"], max(abs(late) for late in lateness))
            self.assertGreater(generators["start_skew_us"], 1.0)
            self.assertEqual(generators["max_start_skew_us"], 1.0)
            self.assertFalse(merged["valid"])
            self.assertTrue(any("over --max-start-skew 0.001 ms" in reason for reason in merged["invalid_reasons"]),
                            merged["invalid_reasons"])

            # Exact: the same as merging the ranks' own files, bucket for bucket.
            rank_files = [os.path.join(scratch, f"rank-{rank}.json") for rank in range(RANKS)]
            for rank, path in enumerate(rank_files):
                with open(path) as f:
                    own = json.load(f)
                self.assertEqual(own["config"]["connections"], 2)
                self.assertAlmostEqual(own["run"]["start_late_s"] * 1e6, lateness[rank], places=3)
            reference = os.path.join(scratch, "reference.json")
            merge = subprocess.run([LOADGEN, "merge", *rank_files, "--json", reference, "--quiet"], capture_output=True,
                                   text=True, timeout=30)
            self.assertEqual(merge.returncode, 0, merge.stderr)
            with open(reference) as f:
                expected = json.load(f)
            for which in ("corrected", "uncorrected", "send_lag", "intervals"):
                self.assertEqual(merged["histograms"][which], expected["histograms"][which], which)
            self.assertEqual(merged["messages"], expected["messages"])
            self.assertEqual(merged["errors"], expected["errors"])

            # The merged interval log: every tag, each the sum of the ranks' own logs.
            log_totals = tag_totals(merged_log)
            self.assertEqual(set(log_totals), {"corrected", "uncorrected", "send_lag"})
            rank_logs = [os.path.join(scratch, f"rank-{rank}.hlog") for rank in range(RANKS)]
            rank_totals = [tag_totals(path) for path in rank_logs]
            for tag, total in log_totals.items():
                self.assertGreater(total, 0, tag)
                self.assertEqual(total, sum(own.get(tag, 0) for own in rank_totals), tag)
            reference_log = os.path.join(scratch, "reference.hlog")
            merge = subprocess.run([LOADGEN, "merge", *rank_logs, "--hlog", reference_log, "--quiet"],
                                   capture_output=True, text=True, timeout=30)
            self.assertEqual(merge.returncode, 0, merge.stderr)
            with open(merged_log) as mine, open(reference_log) as reference:
                self.assertEqual(mine.read(), reference.read())

            try:
                import jsonschema
            except ImportError:
                return
            with open(os.path.join(os.path.dirname(__file__), "..", "..", "results", "schema",
                                   "loadgen-result.schema.json")) as f:
                jsonschema.Draft202012Validator(json.load(f)).validate(merged)


def established_peers(namespace, port):
    """The peer addresses of established connections to `port` in `namespace`, from `ss`."""
    out = subprocess.run(["ip", "netns", "exec", namespace, "ss", "-Htn", "state", "established",
                          f"( sport = :{port} )"], capture_output=True, text=True, timeout=10).stdout
    return {line.split()[-1].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}


class Namespaces(unittest.TestCase):
    """Each rank as a host of its own, simulated by network namespaces on one bridge."""
    SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "netns-hosts.sh")
    PREFIX = f"echolab-mpi-{os.getpid()}"  # the PID: a set left by a killed run is found again

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("network namespaces need root")
        if not shutil.which("ip") or not shutil.which("ss"):
            self.skipTest("needs ip and ss (iproute2)")
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
        for pid in set(re.findall(r"^echolab-mpi-(\d+)-srv\b", names, re.M)):
            if not os.path.exists(f"/proc/{pid}"):
                subprocess.run([self.SCRIPT, "destroy", f"echolab-mpi-{pid}"], capture_output=True, timeout=60)
        made = subprocess.run([self.SCRIPT, "create", str(RANKS), self.PREFIX], capture_output=True, text=True,
                              timeout=60)
        if made.returncode != 0:
            self.skipTest(f"cannot make network namespaces here: {made.stderr.strip()}")
        self.addCleanup(subprocess.run, [self.SCRIPT, "destroy", self.PREFIX], capture_output=True, timeout=60)

    def test_four_ranks_from_four_addresses_match_the_server(self):
        server_ns = f"{self.PREFIX}-srv"
        with tempfile.TemporaryDirectory() as scratch:
            stats_path = os.path.join(scratch, "stats.json")
            out = os.path.join(scratch, "merged.json")
            with EchoServer(SERVER, "epoll", "10.77.0.1:0", extra_args=["--stats-json", stats_path],
                            launcher=["ip", "netns", "exec", server_ns]) as server:
                command = [MPIRUN, *mpirun_flags(), "-np", str(RANKS), LOADGEN_MPI, "--netns", f"{self.PREFIX}-gen%r",
                           "--target", server.address, "--mode", "open", "--rate", "2000", "-c", "8",
                           "--warmup", "0.3s", "--duration", "1s", "--timeout", "1s", "--json", out, "--quiet",
                           "--no-status"]
                process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True, start_new_session=True)
                peers = set()
                try:
                    deadline = time.monotonic() + RUN_DEADLINE
                    while process.poll() is None and time.monotonic() < deadline:
                        peers |= established_peers(server_ns, server.port)
                        time.sleep(0.1)
                    _, err = process.communicate(timeout=max(1, deadline - time.monotonic()))
                finally:
                    if process.poll() is None:
                        os.killpg(process.pid, signal.SIGKILL)
                        process.communicate()
                server.stop()
            self.assertEqual(process.returncode, 0, err)
            self.assertEqual(peers, {f"10.77.0.{10 + rank}" for rank in range(RANKS)})
            with open(out) as f:
                merged = json.load(f)
            with open(stats_path) as f:
                stats = json.load(f)
            self.assertEqual(merged["errors"]["total"], 0, merged["errors"])
            self.assertEqual(merged["messages"]["received"] + merged["messages"]["warmup_messages"],
                             stats["counters"]["messages"])
            self.assertEqual(len(merged["generators"]["ranks"]), RANKS)

    def test_a_missing_namespace_is_one_line_naming_the_rank(self):
        run, _ = mpirun((RANKS, [LOADGEN_MPI, "--netns", f"{self.PREFIX}-gen%r-missing", "--target", "10.77.0.1:7",
                                 "-c", "4", "--duration", "1s"]))
        self.assertEqual(run.returncode, 2, run.stderr)
        lines = [line for line in our_lines(run.stderr) if "over 4 generators" not in line]
        self.assertEqual(len(lines), 1, run.stderr)
        self.assertTrue(lines[0].startswith(f"echolab-loadgen-mpi: rank 0 on {socket.gethostname()}: --netns "
                                            f"{self.PREFIX}-gen0-missing: open /run/netns/{self.PREFIX}-gen0-missing: "
                                            "No such file or directory"), lines[0])


class Failures(unittest.TestCase):
    def test_a_rank_that_cannot_reach_its_target_stops_all_before_the_start(self):
        with EchoServer(SERVER, "epoll") as server, tempfile.TemporaryDirectory() as scratch:
            out = os.path.join(scratch, "merged.json")
            flags = ["-c", "4", "--warmup", "0.2s", "--duration", "20s", "--timeout", "1s", "--json", out,
                     "--no-status"]
            run, took = mpirun((RANKS - 1, [LOADGEN_MPI, "--target", server.address, *flags]),
                               (1, [LOADGEN_MPI, "--target", f"127.0.0.1:{closed_port()}", *flags]))
            self.assertEqual(run.returncode, 2, run.stderr)
            lines = [line for line in our_lines(run.stderr) if "over 4 generators" not in line]
            self.assertEqual(len(lines), 1, run.stderr)
            self.assertRegex(lines[0], r"^echolab-loadgen-mpi: rank 3 on \S+: cannot reach 127\.0\.0\.1:\d+ \(tcp\): "
                                       r"connect: Connection refused$")
            self.assertLess(took, 20, "the other ranks ran instead of stopping")
            self.assertFalse(os.path.exists(out))

    def test_a_mistake_every_rank_makes_is_one_line(self):
        run, _ = mpirun((RANKS, [LOADGEN_MPI, "--target", "127.0.0.1:7", "-c", "3", "--duration", "1s"]))
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertEqual(our_lines(run.stderr), [
            f"echolab-loadgen-mpi: rank 0 on {socket.gethostname()}: --connections 3 over 4 generators leaves some "
            "without a connection: give at least one per generator (ranks 1, 2, 3 failed too)"])

    def test_a_killed_rank_ends_the_run_at_once_and_no_result_is_written(self):
        with EchoServer(SERVER, "epoll") as server, tempfile.TemporaryDirectory() as scratch:
            out = os.path.join(scratch, "merged.json")
            command = [MPIRUN, *mpirun_flags(), "-np", str(RANKS), LOADGEN_MPI, "--target", server.address,
                       "--mode", "open", "--rate", "400", "-c", "4", "--warmup", "0.2s", "--duration", "30s",
                       "--json", out, "--quiet", "--no-status"]
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, start_new_session=True)
            try:
                # Running: rank 0 has said the split (after its set-up), and all 4 ranks exist.
                deadline = time.monotonic() + RUN_DEADLINE
                ranks = {}
                while time.monotonic() < deadline and len(ranks) < RANKS and process.poll() is None:
                    time.sleep(0.2)
                    ranks = rank_processes(process.pid)
                self.assertEqual(len(ranks), RANKS, "the ranks did not start")
                time.sleep(2)  # into the run: connected, started, measuring
                killed_at = time.monotonic()
                os.kill(ranks[2], signal.SIGKILL)
                _, err = process.communicate(timeout=30)
                took = time.monotonic() - killed_at
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.communicate()
            self.assertNotEqual(process.returncode, 0, err)
            self.assertLess(took, 20, err)
            self.assertRegex(err, r"rank 2\b.*(signal 9|Killed)", err)
            self.assertFalse(os.path.exists(out))


def run_as_plain_user():
    """As root: MergedRun again as the user nobody (setpriv drops root's uid, gid and groups),
    with a scratch directory of its own as TMPDIR and HOME. Its exit status; 77 (skipped,
    saying why) when not root, or when nobody cannot reach the build."""
    if os.geteuid() != 0:
        print("skipped: already a plain user, so the loadgen_mpi test itself is the plain-user run")
        return SKIP
    setpriv = shutil.which("setpriv")
    if not setpriv:
        print("skipped: needs setpriv (util-linux) to run as a plain user")
        return SKIP
    as_nobody = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    this_file = os.path.abspath(__file__)
    scratch = tempfile.mkdtemp(prefix="echolab-mpi-plain-user-")
    try:
        os.chown(scratch, NOBODY, NOBODY)
        for path in (MPIRUN, LOADGEN_MPI, LOADGEN, SERVER, this_file):
            mode = "-r" if path == this_file else "-x"
            if subprocess.run([*as_nobody, "test", mode, path], timeout=30).returncode != 0:
                print(f"skipped: uid {NOBODY} cannot {'read' if mode == '-r' else 'run'} {path} "
                      "(a directory on its path is closed to other users)")
                return SKIP
        env = dict(os.environ, HOME=scratch, TMPDIR=scratch, **{EXPECTED_UID: str(NOBODY)})
        command = [*as_nobody, sys.executable, this_file, MPIRUN, LOADGEN_MPI, LOADGEN, SERVER, "-v", "MergedRun"]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, env=env, cwd=scratch, start_new_session=True)
        try:
            return process.wait(timeout=2 * RUN_DEADLINE)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            print(f"the run as uid {NOBODY} did not end within {2 * RUN_DEADLINE} s", file=sys.stderr)
            return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    version = subprocess.run([MPIRUN, "--version"], capture_output=True, text=True, timeout=30).stdout
    if not re.search(r"Open MPI|OpenRTE|open-mpi\.org", version):  # mpirun says "Open MPI", mpiexec "OpenRTE"
        print(f"skipped: {MPIRUN} is not Open MPI's mpirun (the flags here are Open MPI's): {version.strip()}")
        sys.exit(SKIP)
    if PLAIN_USER:
        sys.exit(run_as_plain_user())
    unittest.main()
