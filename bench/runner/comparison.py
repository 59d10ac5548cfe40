"""What the interleaved comparisons outside the runner (bench/fidelity.py,
bench/sockperf_peer.py) share: a server kept up for a whole comparison and restarted if it
dies between runs, and the result file with the host context it was measured in."""
import datetime
import json
import os
import signal
import subprocess
import sys
import time

from runner.cell import kill_group
from runner.host import host_context
from runner.main import git_commit

STOP_TIMEOUT_S = 5


class KeptServer:
    """A subclass's launch() starts self.process and waits until it serves, or raises
    CellFailure (having killed it)."""

    stop_signal = signal.SIGTERM

    def __init__(self):
        self.process = None

    def launch(self):
        raise NotImplementedError

    def ensure_running(self):
        """Starts the server if it is not running; the reason it died, if it had."""
        if self.process is not None and self.process.poll() is None:
            return None
        died = None
        if self.process is not None:
            died = f"server exited with status {self.process.returncode}"
            kill_group(self.process)
        self.launch()
        return died

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        kill_group(self.process)  # whatever children are left, and reaps the server
        self.process = None


def context(build_dir, started, **extra):
    """Where, when, from what and how loaded the comparison ran."""
    return {**host_context(), "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": git_commit(), "build_dir": os.path.abspath(build_dir), "command": sys.argv, **extra,
            "load_avg": list(os.getloadavg()), "elapsed_s": round(time.monotonic() - started, 1)}


def write_result(path, result):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as out:
        json.dump(result, out, indent=1)
        out.write("\n")
