#!/usr/bin/python3
"""echolab's epoll engine beside sockperf's own server, both under sockperf's own client.

sockperf (Mellanox, Debian's package) is the nearest peer: a latency benchmark whose server
is one epoll loop. Here its unmodified ping-pong client measures both servers over TCP:
echolab-server --engine epoll --protocol sockperf, and `sockperf server -F epoll` (given a
feed file, as -F requires). With 1 socket, and with 16 sockets multiplexed by the client
(a feed file of 16 lines, -f). Both servers stay up for a configuration; the runs alternate
echolab, sockperf, sockperf, echolab... (ABBA) over --rounds rounds. Server pinned to CPU 0,
client to CPU 1. From sockperf's own summary: the message rate (ReceivedMessages over the
RunTime of its "[Valid Duration]" line), and its p50 and p99 latency (half the round
trip, as sockperf reports it). Writes each run, the medians, the ratios echolab / sockperf
(rate: higher is better for echolab; latency: lower) and the host context.

    bench/sockperf_peer.py --build-dir build/release [--out results/sockperf-peer.json]

Every run is bounded (sockperf's -t and a subprocess timeout); a server that died is
restarted and the run recorded with its reason. Standard library only (/usr/bin/python3).
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from loadgen_overhead import pinned  # noqa: E402
from runner.cell import CellFailure, kill_group, read_ready_line, start_server  # noqa: E402
from runner import sockperf  # noqa: E402
from runner.comparison import KeptServer, context, write_result  # noqa: E402

READY_TIMEOUT_S = 10
SIDES = ("echolab", "sockperf")


class Server(KeptServer):
    """One side's server for a whole configuration, restarted if it dies."""

    def __init__(self, side, args, workdir):
        super().__init__()
        self.side = side
        self.args = args
        self.workdir = workdir
        self.port = None
        if side == "sockperf":
            self.stop_signal = signal.SIGINT

    def launch(self):
        if self.side == "echolab":
            command = [self.args.server, "--engine", "epoll", "--protocol", "sockperf", "--listen", "127.0.0.1:0"]
            self.process = start_server(pinned(command, self.args.server_cpu), stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE)
            target = read_ready_line(self.process, READY_TIMEOUT_S)  # kills it and raises if not ready
            self.port = int(target.rsplit(":", 1)[1])
            return
        self.port = sockperf.free_port()
        feed = os.path.join(self.workdir, "server.feed")
        with open(feed, "w") as out:
            out.write(f"T:127.0.0.1:{self.port}\n")
        command = [self.args.sockperf, "server", "-f", feed, "-F", "epoll"]
        self.process = start_server(pinned(command, self.args.server_cpu), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        try:
            if not sockperf.wait_for_listener(self.port, self.process, READY_TIMEOUT_S):
                if self.process.poll() is not None:
                    raise CellFailure(f"sockperf server exited with status {self.process.returncode}")
                raise CellFailure(f"sockperf server not listening on port {self.port} after {READY_TIMEOUT_S} s")
        except CellFailure:
            kill_group(self.process)
            raise


def parse_client_output(text):
    """Rate, p50 and p99 from sockperf 3.7's summary, or None without a valid window."""
    summary = sockperf.parse_summary(text)
    if summary is None:
        return None
    return {"rate": summary["messages_per_s"], "p50_us": summary["latency_us"]["p50"],
            "p99_us": summary["latency_us"]["p99"], "sent": summary["total_sent"],
            "received": summary["total_received"], "dropped": summary["dropped"]}


def run_client(server, sockets, args, workdir):
    command = pinned(sockperf.ping_pong_command(args.sockperf, "tcp", server.port, sockets, args.duration,
                                                args.size, workdir), args.client_cpu)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.duration + 20)
    except subprocess.TimeoutExpired:
        return {"valid": False, "reason": "sockperf did not finish in time"}
    parsed = parse_client_output(done.stdout + done.stderr)
    if done.returncode != 0 or parsed is None:
        return {"valid": False,
                "reason": f"sockperf exit {done.returncode}: " + sockperf.last_message(done.stdout + done.stderr)}
    return {"valid": True, "reason": None, **parsed}


def median_of(runs, key):
    values = [run[key] for run in runs if run.get("valid") and run.get(key) is not None]
    return statistics.median(values) if values else None


def measure(sockets, args):
    entry = {"sockets": sockets, "runs": {side: [] for side in SIDES}}
    with tempfile.TemporaryDirectory(prefix="sockperf-peer-") as workdir:
        servers = {side: Server(side, args, workdir) for side in SIDES}
        try:
            for round_index in range(args.rounds):
                for side in SIDES if round_index % 2 == 0 else tuple(reversed(SIDES)):
                    try:
                        died = servers[side].ensure_running()
                    except CellFailure as failure:
                        entry["runs"][side].append({"valid": False, "reason": str(failure)})
                        continue
                    if died:
                        entry.setdefault("server_restarts", []).append({"side": side, "reason": died})
                    entry["runs"][side].append(run_client(servers[side], sockets, args, workdir))
        finally:
            for server in servers.values():
                server.stop()
    for side in SIDES:
        for key in ("rate", "p50_us", "p99_us"):
            entry[f"{side}_{key}_median"] = median_of(entry["runs"][side], key)
        entry[f"{side}_valid_runs"] = sum(1 for run in entry["runs"][side] if run.get("valid"))
    for key in ("rate", "p50_us", "p99_us"):
        mine, theirs = entry[f"echolab_{key}_median"], entry[f"sockperf_{key}_median"]
        entry[f"{key}_ratio"] = mine / theirs if mine and theirs else None
    return entry


def format_row(entry):
    def number(value, unit):
        return f"{value:,.1f}{unit}" if value is not None else "-"
    parts = [f"sockets={entry['sockets']:<3d}"]
    for side in SIDES:
        parts.append(f"{side} {number(entry[f'{side}_rate_median'], ' msg/s')} p50 "
                     f"{number(entry[f'{side}_p50_us_median'], ' us')} p99 {number(entry[f'{side}_p99_us_median'], ' us')}")
    ratio = entry.get("rate_ratio")
    parts.append(f"rate ratio {ratio:.2f}" if ratio else "rate ratio n/a")
    return "  ".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", required=True, help="a build of echolab-server (release for numbers)")
    parser.add_argument("--sockperf", default=shutil.which("sockperf") or "/usr/bin/sockperf")
    parser.add_argument("--sockets", default="1,16", help="client socket counts (more than 1: a feed file)")
    parser.add_argument("--rounds", type=int, default=10, help="runs of each side per socket count (ABBA order)")
    parser.add_argument("--duration", type=int, default=2, help="seconds per sockperf run (its -t)")
    parser.add_argument("--size", type=int, default=64, help="bytes per message, header included (sockperf -m)")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "results", "sockperf-peer.json"))
    args = parser.parse_args()
    try:
        socket_counts = [int(item) for item in args.sockets.split(",") if item]
    except ValueError:
        parser.error(f"bad --sockets {args.sockets!r}: expected counts like 1,16")
    if args.rounds < 1 or args.duration < 1 or args.size < 14 or not socket_counts or min(socket_counts) < 1:
        parser.error("--rounds and --duration must be >= 1, --size >= 14 (sockperf's header), --sockets >= 1")
    args.server = os.path.join(args.build_dir, "servers", "echolab-server")
    for path in (args.server, args.sockperf):
        if not os.access(path, os.X_OK):
            sys.exit(f"sockperf_peer.py: no executable at {path}")
    started = time.monotonic()
    entries = []
    for sockets in socket_counts:
        entries.append(measure(sockets, args))
        print(format_row(entries[-1]), flush=True)
    version = subprocess.run([args.sockperf, "--version"], capture_output=True, text=True, timeout=10)
    result = {
        "benchmark": "sockperf-peer",
        "description": "sockperf ping-pong (TCP) against echolab-server --engine epoll --protocol sockperf "
                       "and against sockperf server -F epoll, interleaved ABBA; ratios are echolab / sockperf",
        "context": context(args.build_dir, started,
                           sockperf_version=(version.stdout + version.stderr).strip().splitlines()[:1]),
        "config": {"size_bytes": args.size, "duration_s": args.duration, "rounds": args.rounds,
                   "server_cpu": args.server_cpu, "client_cpu": args.client_cpu, "transport": "tcp"},
        "entries": entries,
    }
    write_result(args.out, result)
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
