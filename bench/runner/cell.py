"""One cell of a benchmark: a fresh echolab-server pinned to the server CPUs, the load
generator pinned to the client CPUs, the server's process tree sampled meanwhile, then a
SIGTERM and checks that it exited 0 and left nothing behind. Failures are results too."""
import contextlib
import json
import os
import re
import resource
import shlex
import select
import shutil
import signal
import subprocess
import tempfile
import time

from . import procfs
from . import sides
from . import sockperf as sockperf_mod

READY_TIMEOUT_S = 10
STOP_TIMEOUT_S = 15
# The simulated hosts of a cell of several generators: bench/runner/../../scripts in a
# checkout, PREFIX/share/echolab/scripts installed (the same layout).
NETNS_HOSTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "scripts", "netns-hosts.sh")
# The server's address on the bridge scripts/netns-hosts.sh makes.
NETNS_SERVER_ADDRESS = "10.77.0.1"
# mpirun (Open MPI 4.1, Debian 12) for the ranks of one cell: MPI's own traffic in shared
# memory ("vader" is "sm" from Open MPI 5); no binding, so that the ranks keep the client
# CPUs the runner's taskset gave mpirun; --oversubscribe, since Open MPI counts a slot per
# core, which on a small machine is fewer than the ranks (and than its CPUs, with SMT).
MPIRUN_FLAGS = ["--mca", "btl", "self,vader", "--bind-to", "none", "--oversubscribe"]


class CellFailure(Exception):
    pass


def start_server(command, **kwargs):
    """A server in its own session and process group, so that kill_group reaches every
    worker and child it forked, whatever became of the server itself."""
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)


def kill_group(process):
    """SIGKILL to the whole session start_server() gave the process (its group, and any group
    a member made of its own), then reaps it. Safe on every exit path (failure, timeout,
    exception, KeyboardInterrupt), and when the session is gone."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for _ in range(3):  # again, for what a member forked while it was being killed
        members = procfs.session_members(process.pid)
        if not members:
            break
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    if process.poll() is None:
        process.wait()


def run_group(command, timeout, **kwargs):
    """subprocess.run for a command that starts processes of its own (mpirun and its ranks):
    in its own process group, all of which is killed when it outlives `timeout`. Killing only
    the direct child would leave the ranks running on, orphaned, into the next cell."""
    process = start_server(command, **kwargs)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:
        kill_group(process)
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _pinned(command, cpus):
    if cpus and shutil.which("taskset"):
        return ["taskset", "-c", cpus] + command
    return command


def _ms(seconds):
    return f"{int(round(seconds * 1000))}ms"


def read_ready_line(process, timeout):
    """The server's one ready line, or a CellFailure quoting what it said instead."""
    deadline = time.monotonic() + timeout
    line = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            line += chunk
            if b"\n" in line:
                text = line.split(b"\n", 1)[0].decode(errors="replace")
                match = re.match(r"echolab-server listening (\S+) (\S+)$", text)
                if match:
                    return match.group(2)
                raise CellFailure(f"unexpected ready line: {text!r}")
        if process.poll() is not None:
            break
    kill_group(process)
    err = process.stderr.read().decode(errors="replace").strip().splitlines()
    raise CellFailure("server did not start: " + (err[-1] if err else f"exit status {process.returncode}"))


def server_command(binaries, cell, stats_path, listen):
    """The cell's server command, with the extra options of an A/B run's side (if any)."""
    return sides.with_extra_args(_cell_server_command(binaries, cell, stats_path, listen),
                                 binaries.get("server_args", ()))


def _cell_server_command(binaries, cell, stats_path, listen):
    return [binaries["server"], "--engine", cell["engine"], "--listen", listen,
            "--transport", cell["transport"], "--protocol", cell["protocol"],
            "--workers", str(cell["workers"]), "--max-children", str(cell["max_children"]),
            "--max-threads", str(cell["max_threads"]), "--work", cell["work"],
            "--stats-json", stats_path] + shlex.split(cell.get("server_args") or "")


def loadgen_command(binaries, cell, target, json_path, program=None):
    """echolab-loadgen's options for the cell; `program` another that takes them all
    (echolab-loadgen-mpi, for which --connections and --rate are totals)."""
    command = [program or binaries["loadgen"], "--target", target, "--transport", cell["transport"],
               "--protocol", cell["protocol"], "--mode", cell["mode"],
               "--connections", str(cell["connections"]), "--size", str(cell["size"]),
               "--warmup", _ms(cell["warmup_s"]), "--duration", _ms(cell["duration_s"]),
               "--timeout", _ms(cell["timeout_s"]), "--threads", str(cell["loadgen_threads"]),
               "--json", json_path, "--quiet", "--no-status"]
    if cell["mode"] == "closed":
        command += ["--pipeline", str(cell["pipeline"])]
    if cell["mode"] == "open":
        command += ["--rate", str(cell["rate"])]
    return command


def load_command(binaries, cell, target, json_path, hosts):
    """The cell's load: echolab-loadgen, or with more than one generator echolab-loadgen-mpi
    under mpirun, a rank per generator (in its own network namespace when `hosts` has them)."""
    if hosts["count"] == 1:
        return loadgen_command(binaries, cell, target, json_path)
    command = [binaries["mpirun"], "-np", str(hosts["count"]), *MPIRUN_FLAGS]
    if os.geteuid() == 0:
        command.append("--allow-run-as-root")  # Open MPI refuses root without it
    command += loadgen_command(binaries, cell, target, json_path, program=binaries["loadgen_mpi"])
    if hosts["prefix"]:
        command += ["--netns", hosts["prefix"] + "-gen%r"]
    return command


@contextlib.contextmanager
def generator_hosts(cell):
    """Where the cell's generators run, as its record says it ("generators"): one generator
    on loopback; more, as root, each in a network namespace of its own and the server in
    another, on one bridge (scripts/netns-hosts.sh, removed after the cell), so that every
    generator reaches the server from an address of its own as from a host of its own.
    Without root (or over unix sockets, which no network separates), the ranks share
    loopback, and the record's note says so. As root, namespaces that cannot be made fail
    the cell rather than quietly measuring something else."""
    count = cell.get("generators", 1)  # a cell built by hand may leave out the default
    hosts = {"count": count, "network": "loopback", "prefix": None}
    if count > 1 and cell["transport"].startswith("unix"):
        hosts["note"] = "unix sockets: every rank reaches the server's socket file, no network between them"
    elif count > 1 and os.geteuid() != 0:
        hosts["note"] = "not root: the ranks share loopback with the server (network namespaces need root)"
    elif count > 1:
        prefix = f"echolab-cell-{os.getpid()}"
        try:
            made = subprocess.run([NETNS_HOSTS, "create", str(count), prefix], stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise CellFailure(f"cannot make the generators' network namespaces: {error}") from None
        if made.returncode != 0:
            lines = made.stderr.strip().splitlines()
            raise CellFailure("cannot make the generators' network namespaces: "
                              + (lines[-1] if lines else f"{NETNS_HOSTS} exited with status {made.returncode}"))
        hosts.update(network="namespaces", prefix=prefix,
                     note=f"rank r in network namespace {prefix}-gen<r> (10.77.0.<10+r>), the server in "
                          f"{prefix}-srv ({NETNS_SERVER_ADDRESS}), one bridge between them")
        try:
            yield hosts
        finally:
            subprocess.run([NETNS_HOSTS, "destroy", prefix], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=60)
        return
    yield hosts


def load_failure(stderr_bytes):
    """The line that says why the load failed: under mpirun, echolab-loadgen-mpi's own line
    naming the rank (mpirun's banners around it say less); else the last line."""
    lines = [line.strip() for line in stderr_bytes.decode(errors="replace").splitlines() if line.strip("-\n ")]
    for line in lines:
        if re.match(r"echolab-loadgen-mpi: rank \d+ ", line):
            return line
    return lines[-1] if lines else None


# Descriptors beyond one per connection: the server's listener, epoll sets, eventfds, stats
# file and stdio; the load generator's epoll sets, probe socket and outputs (it asks for its
# threads + 16 itself).
SERVER_SPARE_FDS = 64


def descriptors_needed(cell):
    connections = int(cell["connections"])
    return connections + max(SERVER_SPARE_FDS, int(cell.get("loadgen_threads") or 1) + 16)


def limit_value(value):
    return "unlimited" if value == resource.RLIM_INFINITY else int(value)


@contextlib.contextmanager
def nofile_for(cell, limits):
    """RLIMIT_NOFILE high enough for the cell's server and load generator, which inherit it
    from this process: the soft limit is raised towards the hard one for the cell, and put
    back after. What was used goes into `limits["nofile"]` (the cell's record), also when a
    hard limit too low for the cell makes it a CellFailure with one line."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = descriptors_needed(cell)
    used = limits["nofile"] = {"soft": limit_value(soft), "hard": limit_value(hard), "needed": needed,
                               "raised_from": None}
    raised = soft != resource.RLIM_INFINITY and soft < needed
    if raised:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise CellFailure(f"RLIMIT_NOFILE hard limit {hard} is below the {needed} descriptors that "
                              f"{cell['connections']} connections need: raise it (ulimit -Hn, as root)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        used.update(soft=needed, raised_from=soft)
    try:
        yield
    finally:
        if raised:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def memory_per_connection(cell, stats, sampler):
    """The server's memory per connection: its peak RSS (whole process tree) over the cell's
    connections, and the growth over the idle server (sampled before the load started) over
    the connections it held at once, which for a capped engine is fewer than the cell's."""
    connections = int(cell["connections"])
    held = stats.get("connections_peak") if isinstance(stats.get("connections_peak"), int) else None
    peak_rss, peak_pss = sampler.peak["rss_bytes"], sampler.peak["pss_bytes"]
    idle_rss, idle_pss = sampler.start["rss_bytes"], sampler.start["pss_bytes"]

    def per(value, count):
        return round(value / count) if count else None

    return {"connections": connections, "connections_held_at_peak": held,
            "idle_rss_bytes": idle_rss, "peak_rss_bytes": peak_rss,
            "rss_bytes": per(peak_rss, connections),
            "rss_added_bytes": per(max(0, peak_rss - idle_rss), held),
            "pss_added_bytes": per(max(0, peak_pss - idle_pss), held),
            "note": "rss_bytes: peak RSS / connections; *_added_bytes: (peak - idle) / connections held at peak"}


NOTE_PREFIX = "echolab-loadgen: note: "


def loadgen_notes(stderr_bytes):
    """What the load generator decided on the run's behalf (a raised limit, source addresses)."""
    lines = stderr_bytes.decode(errors="replace").splitlines()
    return [line[len(NOTE_PREFIX):] for line in lines if line.startswith(NOTE_PREFIX)]


def _listen_address(cell, workdir, hosts):
    if cell["transport"].startswith("unix"):
        return "unix:" + os.path.join(workdir, "echolab.sock")
    return f"{NETNS_SERVER_ADDRESS}:0" if hosts["prefix"] else "127.0.0.1:0"


def stop_server(server):
    """SIGTERM, and the seconds the server took to exit; CellFailure if it did not in time."""
    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise CellFailure(f"server did not exit within {STOP_TIMEOUT_S}s of SIGTERM") from None
    return round(time.monotonic() - started, 3)


def check_exit_status(server):
    """CellFailure quoting the server's last word if it exited with anything but 0."""
    if server.returncode != 0:
        message = server.stderr.read().decode(errors="replace").strip().splitlines()
        raise CellFailure(f"server exited with status {server.returncode}" + (f": {message[-1]}" if message else ""))


def run_echolab_cell(cell, binaries, cpus, workdir):
    with generator_hosts(cell) as hosts:
        record = _run_echolab_cell(cell, binaries, cpus, workdir, hosts)
    if hosts["count"] > 1:
        record["generators"] = {key: value for key, value in hosts.items() if value is not None}
    return record


def _run_echolab_cell(cell, binaries, cpus, workdir, hosts):
    stats_path = os.path.join(workdir, "server-stats.json")
    loadgen_path = os.path.join(workdir, "loadgen.json")
    window_path = os.path.join(workdir, "measured-window.json") if binaries.get("window_file") else None
    command = _pinned(server_command(binaries, cell, stats_path, _listen_address(cell, workdir, hosts)),
                      cpus["server"])
    if hosts["prefix"]:
        command = ["ip", "netns", "exec", hosts["prefix"] + "-srv"] + command  # it execs: the PID stays the server's
    server = start_server(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        target = read_ready_line(server, READY_TIMEOUT_S)
        budget = cell["warmup_s"] + cell["duration_s"] + cell["timeout_s"] + 30
        load_cmd = load_command(binaries, cell, target, loadgen_path, hosts)
        if window_path:
            load_cmd += ["--window-file", window_path]
        with procfs.TreeSampler(server.pid, window_file=window_path) as sampler:
            load = run_group(_pinned(load_cmd, cpus["client"]),
                             budget, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        tree = procfs.process_tree(server.pid)
        seconds_to_exit = stop_server(server)
        exit_info = {"status": server.returncode, "seconds_to_exit": seconds_to_exit,
                     "leftover_processes": 0 if procfs.wait_gone(tree[1:], 2.0) else len(tree) - 1,
                     "zombies_at_end": sampler.end["zombies"]}
        if load.returncode != 0:
            raise CellFailure("load generator failed: " + (load_failure(load.stderr) or f"status {load.returncode}"))
        check_exit_status(server)
        with open(loadgen_path) as f:
            loadgen = json.load(f)
        with open(stats_path) as f:
            stats = json.load(f)
        server_record = {"stats": stats, "resources": sampler.result(), "exit": exit_info,
                         "memory_per_connection": memory_per_connection(cell, stats, sampler)}
        return {"loadgen": loadgen, "loadgen_notes": loadgen_notes(load.stderr), "server": server_record}
    finally:
        # Also after a clean exit: a worker that outlived the server must not outlive the cell.
        kill_group(server)


def _sockperf_seconds(cell):
    return max(1, int(round(cell["duration_s"])))  # sockperf's -t takes whole seconds


def _sockperf_message_size(cell):
    """The cell's message size (the first of a range), never under sockperf's own header."""
    return max(int(str(cell["size"]).split("..")[0]), sockperf_mod.MIN_MESSAGE_SIZE)


def _run_sockperf_client(command, cell, cpus):
    """sockperf's ping-pong client run to its end on the client CPUs, and its summary."""
    try:
        out = subprocess.run(_pinned(command, cpus["client"]), stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=cell["duration_s"] + 30)
    except subprocess.TimeoutExpired:
        raise CellFailure(f"sockperf client did not finish within {cell['duration_s'] + 30:g}s") from None
    text = out.stdout.decode(errors="replace") + out.stderr.decode(errors="replace")
    if out.returncode != 0:
        raise CellFailure(f"sockperf client exited with status {out.returncode}: {sockperf_mod.last_message(text)}")
    summary = sockperf_mod.parse_summary(text)
    if summary is None:
        raise CellFailure(f"no summary from sockperf's client: {sockperf_mod.last_message(text)}")
    return summary


def run_sockperf_cell(cell, cpus, workdir):
    if not shutil.which("sockperf"):
        raise CellFailure("sockperf is not installed")
    port = sockperf_mod.free_port()
    proto = "--tcp" if cell["transport"] == "tcp" else ""
    server_cmd = _pinned(["sockperf", "server", "-i", "127.0.0.1", "-p", str(port)]
                         + ([proto] if proto else []), cpus["server"])
    server = start_server(server_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if proto:
            if not sockperf_mod.wait_for_listener(port, server, READY_TIMEOUT_S):
                raise CellFailure("sockperf server did not start")
        else:
            time.sleep(0.3)
        command = sockperf_mod.ping_pong_command("sockperf", cell["transport"], port, 1, _sockperf_seconds(cell),
                                                 _sockperf_message_size(cell), workdir, full_rtt=True)
        summary = _run_sockperf_client(command, cell, cpus)
        summary["note"] = "sockperf ping-pong: one connection, one message in flight, its own server (default I/O mode)"
        return {"reference": summary}
    finally:
        server.terminate()
        try:
            server.wait(5)
        except subprocess.TimeoutExpired:
            pass
        kill_group(server)


def run_sockperf_client(cell, binaries, cpus, workdir):
    """A cell's sockperf_client side run, after its load generator's: the same engine started
    again with the cell's server options, pinned alike, but speaking sockperf's protocol on a
    fresh port, under sockperf's own unmodified ping-pong client for the cell's duration, one
    socket per connection (several: a feed file). Past one connection the loads differ: the
    load generator keeps a message in flight on every connection, sockperf's client one in
    all, taking its sockets in turn. --full-rtt, because sockperf reports half the round trip
    otherwise and the load generator's latency is the whole one. A failure here is recorded
    as {"error": one line}, never the cell's: the load generator's measurement stands."""
    if not shutil.which("sockperf"):
        return {"error": "sockperf is not installed"}
    side_cell = dict(cell, protocol="sockperf")
    stats_path = os.path.join(workdir, "sockperf-server-stats.json")
    command = _pinned(server_command(binaries, side_cell, stats_path, "127.0.0.1:0"), cpus["server"])
    sockets, size = int(cell["connections"]), _sockperf_message_size(cell)
    try:
        server = start_server(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as error:
        return {"error": f"cannot start the server: {error}"}
    try:
        port = int(read_ready_line(server, READY_TIMEOUT_S).rsplit(":", 1)[1])
        client = sockperf_mod.ping_pong_command("sockperf", cell["transport"], port, sockets,
                                                _sockperf_seconds(cell), size, workdir, full_rtt=True)
        summary = _run_sockperf_client(client, cell, cpus)
        stop_server(server)
        check_exit_status(server)
    except (CellFailure, OSError) as error:
        return {"error": str(error)}
    finally:
        kill_group(server)
    summary.update(sockets=sockets, message_size=size,
                   note=f"sockperf ping-pong --full-rtt against this engine with --protocol sockperf: {sockets} "
                        "socket(s) taken in turn, one message in flight at a time")
    return summary


def run_cell(cell, binaries, cpus):
    """The cell's result record; status "failed" with a reason instead of an exception."""
    started = time.time()
    record = {"schema": "echolab.bench-cell/1", "cell": cell, "status": "ok"}
    workdir = tempfile.mkdtemp(prefix="echolab-cell-")
    try:
        if cell.get("reference") == "sockperf":
            record.update(run_sockperf_cell(cell, cpus, workdir))
        else:
            record["limits"] = {}
            with nofile_for(cell, record["limits"]):
                record.update(run_echolab_cell(cell, binaries, cpus, workdir))
                if cell.get("sockperf_client"):
                    record["sockperf_client"] = run_sockperf_client(cell, binaries, cpus, workdir)
    except (CellFailure, subprocess.TimeoutExpired, OSError, json.JSONDecodeError) as error:
        record["status"] = "failed"
        record["reason"] = str(error)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    record["started_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
    record["seconds"] = round(time.time() - started, 2)
    return record
