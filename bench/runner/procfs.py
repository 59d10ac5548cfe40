"""Resource use of a server's whole process tree, read from /proc: CPU, memory (RSS and PSS
summed over children), threads, processes and context switches."""
import json
import math
import os
import threading
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None  # the process exited between listing and reading: normal for fork


def _stat_fields(pid):
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    # The command name may hold spaces and parentheses: split after its last ')'.
    rest = text[text.rfind(")") + 2:].split()
    return rest  # rest[0] is field 3 (state)


def children_map():
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields:
                parents.setdefault(int(fields[1]), []).append(int(name))
    return parents


def session_members(session):
    """Every live process of session `session` (a session leader's PID), however its
    members regrouped themselves: mpirun, for one, puts each rank in a process group of its
    own."""
    members = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat_fields(int(name))
            if fields and fields[0] != "Z" and int(fields[3]) == session:
                members.append(int(name))
    return members


def process_tree(root):
    parents = children_map()
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


def _status_value(text, key):
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _last_pid():
    text = _read("/proc/sys/kernel/ns_last_pid")
    return int(text) if text and text.strip().isdigit() else None


class TreeFinder:
    """The process tree under `root`, found without reading every process's /proc/PID/stat.

    Reading another process's stat costs tens of µs of kernel time on a VM, and
    process_tree() reads every process's: run every 100 ms beside a measured load, that walk
    was the tail of the latency it measured (the runner's p99 of a lightly loaded epoll
    server was milliseconds; the same load without the runner, a fraction of that). PIDs are
    handed out in increasing order until they wrap at pid_max, so a descendant of `root` has
    a larger PID than it: only PIDs above the root's are looked at, each once (its parent
    does not change while it stays in the tree). After a wrap (the last PID handed out is
    under the root's) every PID is looked at again."""

    def __init__(self, root):
        self.root = root
        self.parent = {}  # pid -> ppid of every PID above the root looked at so far

    def tree(self):
        last = _last_pid()
        wrapped = last is None or last < self.root
        live = []
        for name in os.listdir("/proc"):
            if name.isdigit() and (wrapped or int(name) > self.root):
                live.append(int(name))
        if wrapped:
            self.parent.clear()
        for pid in live:
            if pid not in self.parent:
                fields = _stat_fields(pid)
                if fields is not None:
                    self.parent[pid] = int(fields[1])
        live_set = set(live)
        for pid in [pid for pid in self.parent if pid not in live_set]:
            del self.parent[pid]  # gone: its PID may come back as another process after a wrap
        children = {}
        for pid, ppid in self.parent.items():
            children.setdefault(ppid, []).append(pid)
        tree, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        return tree


def snapshot(root, tree=None):
    """Totals over the tree right now (`tree`: its PIDs, if already known). CPU includes
    reaped children (cutime/cstime of the root), so the work of a fork engine's finished
    children is not lost."""
    total = {"cpu_user_s": 0.0, "cpu_sys_s": 0.0, "rss_bytes": 0, "pss_bytes": 0, "threads": 0,
             "processes": 0, "zombies": 0, "voluntary_ctxt_switches": 0, "involuntary_ctxt_switches": 0,
             "root_rss_peak_bytes": 0}
    for pid in process_tree(root) if tree is None else tree:
        fields = _stat_fields(pid)
        status = _read(f"/proc/{pid}/status")
        if fields is None or status is None:
            continue
        total["processes"] += 1
        if fields[0] == "Z":
            total["zombies"] += 1
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        total["cpu_user_s"] += utime / CLOCK_TICKS
        total["cpu_sys_s"] += stime / CLOCK_TICKS
        if pid == root:
            total["cpu_user_s"] += cutime / CLOCK_TICKS
            total["cpu_sys_s"] += cstime / CLOCK_TICKS
        total["rss_bytes"] += _status_value(status, "VmRSS") * 1024
        if pid == root:
            total["root_rss_peak_bytes"] = _status_value(status, "VmHWM") * 1024
        total["threads"] += _status_value(status, "Threads")
        total["voluntary_ctxt_switches"] += _status_value(status, "voluntary_ctxt_switches")
        total["involuntary_ctxt_switches"] += _status_value(status, "nonvoluntary_ctxt_switches")
        rollup = _read(f"/proc/{pid}/smaps_rollup")
        if rollup:
            total["pss_bytes"] += _status_value(rollup, "Pss") * 1024
    return total


def minor_faults(root):
    """Minor page faults of the tree so far, its reaped children included (cminflt of the
    root): what a forked child pays to map the pages it touches, code and data alike."""
    total = 0
    for pid in process_tree(root):
        fields = _stat_fields(pid)
        if fields is not None:
            total += int(fields[7]) + (int(fields[8]) if pid == root else 0)  # minflt, cminflt
    return total


class TreeSampler:
    """Samples a process tree every `period` seconds in a thread; keeps the peaks.

    Never inside the load's measured window, which the load generator writes to
    `window_file` when its run starts (echolab-loadgen --window-file). However cheap, a
    sample is /proc reads on a machine whose cores the server and the load generator have
    taken, and it lands on the latency being measured. The connections' set-up, the warm-up
    and the drain are the same load, so the peaks are sampled there; the root's own
    high-water mark (VmHWM), which the kernel keeps through the window, is reported beside
    them. Without a window file (a load generator from before the option) it samples
    throughout, and the result says so."""

    # A sample started just before the window must be over when it opens; the drain after
    # it still answers messages sent inside it.
    MARGIN_S = (0.05, 0.1)

    def __init__(self, root, period=0.1, window_file=None):
        self.root, self.period, self.window_file = root, period, window_file
        self.quiet = None  # (start, end) in time.monotonic() seconds, once the window is known
        self.peak = {"rss_bytes": 0, "pss_bytes": 0, "threads": 0, "processes": 0}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.start = snapshot(self.root)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.end = snapshot(self.root)
        self._fold(self.end)

    def _fold(self, snap):
        for key in self.peak:
            self.peak[key] = max(self.peak[key], snap[key])
        self.samples += 1

    def _read_window(self):
        """(start, end) of the quiet time from the window file (time.monotonic() is
        CLOCK_MONOTONIC on Linux), once it is there; end is infinite for a run bounded by a
        message count."""
        text = _read(self.window_file) if self.window_file else None
        if not text:
            return None
        try:
            window = json.loads(text)
            start = float(window["measure_start_s"]) - self.MARGIN_S[0]
            end = window["send_end_s"]
            return start, math.inf if end is None else float(end) + self.MARGIN_S[1]
        except (ValueError, KeyError, TypeError):
            return None

    def _run(self):
        finder = TreeFinder(self.root)
        while not self._stop.wait(self.period):
            if self.quiet is None:
                self.quiet = self._read_window()
            now = time.monotonic()
            if self.quiet and self.quiet[0] <= now < self.quiet[1]:
                if self._stop.wait(min(self.quiet[1] - now, 3600.0)):
                    return
            self._fold(snapshot(self.root, finder.tree()))

    def result(self):
        """CPU and context switches over the sampled window; memory and counts at peak."""
        delta = {key: self.end[key] - self.start[key] for key in
                 ("cpu_user_s", "cpu_sys_s", "voluntary_ctxt_switches", "involuntary_ctxt_switches")}
        return {
            "cpu_user_s": round(delta["cpu_user_s"], 3),
            "cpu_sys_s": round(delta["cpu_sys_s"], 3),
            "voluntary_ctxt_switches": delta["voluntary_ctxt_switches"],
            "involuntary_ctxt_switches": delta["involuntary_ctxt_switches"],
            "peak_rss_bytes": self.peak["rss_bytes"],
            "peak_pss_bytes": self.peak["pss_bytes"],
            "root_rss_high_water_bytes": self.end["root_rss_peak_bytes"],
            "peak_threads": self.peak["threads"],
            "peak_processes": self.peak["processes"],
            "zombies_at_end": self.end["zombies"],
            "samples": self.samples,
            "measured_window_sampled": self.quiet is None,
            "note": "context switches of children that exited during the window are not counted",
        }


def wait_gone(pids, timeout):
    """True when none of `pids` exists any more (or only as someone else's reused pid)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(os.path.exists(f"/proc/{pid}") for pid in pids):
            return True
        time.sleep(0.05)
    return False
