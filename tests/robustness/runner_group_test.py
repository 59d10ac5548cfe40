"""The benchmark runner leaves no server process behind on any exit path: a server that
failed to start after forking, and a real prefork server whose cell is interrupted
(KeyboardInterrupt) mid-load, take their whole process group with them."""
import os
import signal
import stat
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD_DIR = os.environ.get("ECHOLAB_BINARY_DIR", os.path.join(REPO, "build", "debug"))
sys.path.insert(0, os.path.join(REPO, "bench"))

from runner import cell as cell_mod  # noqa: E402

CELL = {"engine": "prefork", "transport": "tcp", "protocol": "framed", "workers": 2, "max_children": 4,
        "max_threads": 4, "work": "none", "mode": "closed", "connections": 1, "size": 64, "pipeline": 1,
        "warmup_s": 0.1, "duration_s": 0.5, "timeout_s": 1.0, "loadgen_threads": 1}
NO_PINNING = {"server": "", "client": ""}


def _script(folder, name, body):
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, stat.S_IRWXU)
    return path


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _gone_within(pids, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


class ServerGroupIsKilled(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.mkdtemp(prefix="echolab-runner-group-")
        self.pids_file = os.path.join(self.folder, "pids")
        self.started = []

    def tearDown(self):
        for pid in self.started:  # never leave what a failing run left behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)

    def test_failed_start_kills_what_the_server_forked(self):
        server = _script(self.folder, "server", f"sleep 60 & echo $! > {self.pids_file}\n"
                                                "echo not a ready line\nsleep 60\n")
        with self.assertRaises(cell_mod.CellFailure):
            cell_mod.run_echolab_cell(CELL, {"server": server, "loadgen": "/bin/false"}, NO_PINNING, self.folder)
        with open(self.pids_file) as f:
            self.started = [int(f.read())]
        self.assertTrue(_gone_within(self.started, 5), "the server's background child outlived the cell")

    def test_interrupted_cell_kills_every_prefork_worker(self):
        server = os.path.join(BUILD_DIR, "servers", "echolab-server")
        if not os.access(server, os.X_OK):
            self.skipTest(f"no server at {server}")
        # The load generator records the server's processes, then interrupts the runner as a
        # Ctrl-C would, while the cell is in the middle of its load. They are found by this
        # test's own stats path, never by the binary's name: other tests may run prefork servers
        # of the same build at the same time.
        stats_path = os.path.join(self.folder, "server-stats.json")
        loadgen = _script(self.folder, "loadgen",
                          "for i in $(seq 50); do\n"
                          f"  pgrep -f -- '--stats-json {stats_path}' > {self.pids_file}\n"
                          f"  [ $(wc -l < {self.pids_file}) -ge 3 ] && break; sleep 0.1\n"
                          "done\nkill -INT $PPID\nsleep 30\n")
        with self.assertRaises(KeyboardInterrupt):
            cell_mod.run_echolab_cell(CELL, {"server": server, "loadgen": loadgen}, NO_PINNING, self.folder)
        with open(self.pids_file) as f:
            self.started = [int(line) for line in f if line.strip()]
        self.assertGreaterEqual(len(self.started), 3, "expected the parent and two workers")
        self.assertTrue(_gone_within(self.started, 5), "server processes outlived the interrupted cell")


if __name__ == "__main__":
    unittest.main()
