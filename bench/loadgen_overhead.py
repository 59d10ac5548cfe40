#!/usr/bin/python3
"""Does echolab-loadgen's bookkeeping cost anything a user can see?

Runs echolab-loadgen (closed mode, raw protocol, one generator thread, every echoed byte
verified, three histograms) and echolab-bare-client (the simplest epoll ping-pong loop,
nothing checked or recorded) against the same raw-mode echolab-server, interleaved (the
order alternates each round, so drift in the machine's state hits both alike), at several
connection counts, and writes the ratio loadgen / bare of their median throughputs.
Target: >= 1.0.

    bench/loadgen_overhead.py --build-dir build/release [--out results/loadgen-overhead.json]

Standard library only (Debian's /usr/bin/python3).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from runner.cell import nofile_for
from runner.comparison import context, write_result


# Server and clients on different CPUs, as every echolab benchmark runs them, so that the
# two clients compete with the same server for the same core and never with each other.
SERVER_CPU, CLIENT_CPU = ("0", "1") if (os.cpu_count() or 1) >= 2 else (None, None)


def pinned(command, cpu):
    return (["taskset", "-c", cpu] + command) if cpu is not None and shutil.which("taskset") else command


def start_listener(command):
    """Starts a raw-mode echo server on SERVER_CPU (echolab-server or a twin: both print
    "echolab-server listening tcp ADDRESS") and returns it with the address."""
    server = subprocess.Popen(pinned(command, SERVER_CPU), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    line = server.stdout.readline().split()
    if len(line) != 4 or line[:2] != ["echolab-server", "listening"]:
        server.kill()
        sys.exit(os.path.basename(command[0]) + " did not start: " + " ".join(line) + server.stderr.read())
    return server, line[3]


def start_server(build_dir, engine):
    return start_listener(
        [os.path.join(build_dir, "servers", "echolab-server"), "--engine", engine, "--listen",
         "127.0.0.1:0", "--protocol", "raw", "--workers", "4",
         # Every connection served at once (the thread and fork engines cap them at 64 by
         # default and leave the rest waiting in the backlog).
         "--max-threads", "1024", "--max-children", "1024"])


def stop_server(server):
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def run_json(command, deadline, accept_exit=(0,)):
    done = subprocess.run(command, capture_output=True, text=True, timeout=deadline)
    if done.returncode not in accept_exit:
        sys.exit("failed: " + " ".join(command) + "\n" + done.stderr)
    return json.loads(done.stdout)


def loadgen_result(build_dir, target, connections, size, warmup, duration, extra=(), cpu=CLIENT_CPU):
    """One echolab-loadgen run (raw protocol, JSON on stdout); `extra`: more options."""
    return run_json(
        pinned([os.path.join(build_dir, "loadgen", "echolab-loadgen"), "--target", target, "--protocol", "raw",
         "--connections", str(connections), "--size", str(size), "--warmup", f"{warmup}s",
         "--duration", f"{duration}s", "--json", "-", "--quiet", "--no-status", *extra], cpu),
        deadline=warmup + duration + 60)


def loadgen(build_dir, target, connections, size, warmup, duration):
    result = loadgen_result(build_dir, target, connections, size, warmup, duration, ["--threads", "1"])
    errors = result["errors"]["total"]
    if errors:
        sys.exit(f"echolab-loadgen counted {errors} errors: {result['errors']}")
    return result["throughput"]["msgs_per_s"], result["generator"]["threads"][0]["cpu_share"]


def bare(build_dir, target, connections, size, warmup, duration):
    result = run_json(
        pinned([os.path.join(build_dir, "bench", "echolab-bare-client"), target, str(connections), str(size),
                str(warmup), str(duration)], CLIENT_CPU),
        deadline=warmup + duration + 60)
    return result["msgs_per_s"]


def main():
    source_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--engine", default="thread", help="echolab-server engine (raw mode)")
    parser.add_argument("--connections", default="1,16,64,256,1000")
    parser.add_argument("--size", type=int, default=64, help="bytes per message")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each client per connection count")
    parser.add_argument("--out", default=os.path.join(source_dir, "results", "loadgen-overhead.json"))
    args = parser.parse_args()
    started = time.monotonic()

    connection_counts = [int(c) for c in args.connections.split(",")]
    limits = {}
    with nofile_for({"connections": max(connection_counts)}, limits):
        rows = measure(args, connection_counts)

    result = {
        "benchmark": "loadgen_overhead",
        "description": "median msgs/s of echolab-loadgen (1 thread, closed, raw, verified) over "
                       "echolab-bare-client against the same raw-mode echolab-server; target ratio >= 1.0",
        "context": context(args.build_dir, started, nofile=limits["nofile"]),
        "config": {"engine": args.engine, "size_bytes": args.size, "warmup_s": args.warmup,
                   "duration_s": args.duration, "rounds": args.rounds,
                   "server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU},
        "results": rows,
        "min_ratio": min(row["ratio"] for row in rows),
    }
    write_result(args.out, result)
    print(f"minimum ratio {result['min_ratio']:.3f} -> {args.out}")


def measure(args, connection_counts):
    """Both clients, interleaved, `args.rounds` times per connection count, against one
    server kept for the whole run."""
    server, target = start_server(args.build_dir, args.engine)
    rows = []
    try:
        for connections in connection_counts:
            loadgen_rates, bare_rates, loadgen_cpu = [], [], []
            for round_index in range(args.rounds):
                order = ("loadgen", "bare") if round_index % 2 == 0 else ("bare", "loadgen")
                for which in order:
                    if which == "loadgen":
                        rate, cpu = loadgen(args.build_dir, target, connections, args.size, args.warmup, args.duration)
                        loadgen_rates.append(rate)
                        loadgen_cpu.append(cpu)
                    else:
                        bare_rates.append(bare(args.build_dir, target, connections, args.size, args.warmup,
                                               args.duration))
            ratio = statistics.median(loadgen_rates) / statistics.median(bare_rates)
            rows.append({"connections": connections,
                         "loadgen_msgs_per_s": loadgen_rates, "bare_msgs_per_s": bare_rates,
                         "loadgen_median_msgs_per_s": statistics.median(loadgen_rates),
                         "bare_median_msgs_per_s": statistics.median(bare_rates),
                         "loadgen_cpu_share": loadgen_cpu,
                         "ratio": ratio})
            print(f"{connections:5d} connections: loadgen {statistics.median(loadgen_rates):12,.0f} msgs/s, "
                  f"bare {statistics.median(bare_rates):12,.0f} msgs/s, ratio {ratio:.3f}", flush=True)
    finally:
        stop_server(server)
    return rows


if __name__ == "__main__":
    main()
