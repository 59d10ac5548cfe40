#!/usr/bin/python3
"""How fast can one open-loop generator thread pace, and stay honest?

Against twin-epoll (the bare epoll echo loop of bench/twins, no echolab code) on its own
CPU, finds the largest open-loop rate per echolab-loadgen thread (with 1, then 2 threads)
at which a run is valid, stepping the rate up (or down) by --factor until the verdict
changes and then bisecting between the last valid and the first invalid rate. A rate is
valid when every one of its --repeats runs is: echoes received at least 99 % of the asked
rate, send-lag p99 under --max-send-lag-us (100 µs), no thread busy past --max-cpu, and no
other reason of the load generator's own (errors, overflow, the time limit).

Between the open-loop runs, alternating which goes first, echolab-bare-client runs closed
loop on the same server and connections: the rate a generator that checks and times
nothing reaches there. Each thread count's largest valid rate is compared with its median.
Target: at least 100,000 msgs/s per thread over 16 connections, and at least 0.8 x the
bare client.

    bench/open_loop_pacing.py --build-dir build/release [--out results/open-loop-pacing.json]

Standard library only (Debian's /usr/bin/python3); helpers from bench/loadgen_overhead.py.
"""
import argparse
import math
import os
import statistics
import sys
import time

from loadgen_overhead import CLIENT_CPU, SERVER_CPU, bare, loadgen_result, start_listener, stop_server
from runner.comparison import context, write_result

TARGET_PER_THREAD = 100_000
TARGET_RATIO = 0.8
# Rates are asked in whole steps of this many msgs/s per thread: finer than the run-to-run
# noise would be a precision the search does not have.
RATE_GRAIN = 1000


def client_cpus(threads):
    """The generator's CPUs: one per thread beside the server's where the machine has them,
    else all on the client CPU (then the threads share a core, which the results say)."""
    if CLIENT_CPU is None:
        return None
    count = os.cpu_count() or 1
    if count >= threads + 1:
        return ",".join(str(cpu) for cpu in range(1, threads + 1))
    return CLIENT_CPU


def judge(result, asked, max_send_lag_us, max_cpu):
    """The reasons this run is not a valid measurement of `asked` msgs/s (empty: valid)."""
    reasons = list(result["invalid_reasons"])
    achieved = result["throughput"]["msgs_per_s"]
    if achieved < 0.99 * asked:
        reasons.append(f"received {achieved:.0f} msgs/s, under 99% of the asked {asked:.0f}")
    lag_p99 = result["latency"]["send_lag"]["p99_us"]
    if not lag_p99 < max_send_lag_us:
        reasons.append(f"send-lag p99 {lag_p99:.1f} us is not under {max_send_lag_us:g} us")
    if result["errors"]["total"]:
        reasons.append(f"{result['errors']['total']} errors")
    return reasons


class Search:
    """The runs of one configuration, open loop and bare client interleaved."""

    def __init__(self, args, target):
        self.args = args
        self.target = target
        self.bare_rates = []
        self.turn = 0

    def bare_run(self):
        a = self.args
        self.bare_rates.append(bare(a.build_dir, self.target, a.connections, a.size, a.warmup, a.duration))

    def open_run(self, threads, per_thread):
        a = self.args
        asked = per_thread * threads
        result = loadgen_result(
            a.build_dir, self.target, a.connections, a.size, a.warmup, a.duration,
            ["--mode", "open", "--rate", str(asked), "--threads", str(threads), "--max-cpu", str(a.max_cpu)],
            cpu=client_cpus(threads))
        reasons = judge(result, asked, a.max_send_lag_us, a.max_cpu)
        threads_usage = result["generator"]["threads"]
        return {"asked_msgs_per_s": asked,
                "msgs_per_s": result["throughput"]["msgs_per_s"],
                "sent_msgs_per_s": result["throughput"]["sent_msgs_per_s"],
                "send_lag_p99_us": result["latency"]["send_lag"]["p99_us"],
                "send_lag_max_us": result["latency"]["send_lag"]["max_us"],
                "latency_p99_us": result["latency"]["corrected"]["p99_us"],
                "busy_share": [t["busy_share"] for t in threads_usage],
                "cpu_share": [t["cpu_share"] for t in threads_usage],
                "largest_burst_msgs": [t["largest_burst_msgs"] for t in threads_usage],
                "valid": not reasons, "reasons": reasons}

    def measure(self, threads, per_thread):
        """--repeats open-loop runs at this rate, each beside a bare-client run (which one
        goes first alternates); valid when every open-loop run is."""
        runs = []
        for _ in range(self.args.repeats):
            self.turn += 1
            if self.turn % 2 == 0:
                self.bare_run()
            runs.append(self.open_run(threads, per_thread))
            if self.turn % 2 == 1:
                self.bare_run()
        valid = all(run["valid"] for run in runs)
        verdict = "valid" if valid else "INVALID: " + "; ".join(sorted({r for run in runs for r in run["reasons"]}))
        print(f"  {threads} thread(s), {per_thread:9,d} msgs/s per thread: {verdict}", flush=True)
        return {"per_thread_msgs_per_s": per_thread, "valid": valid, "runs": runs}


def grain(rate):
    return max(RATE_GRAIN, int(round(rate / RATE_GRAIN)) * RATE_GRAIN)


def largest_valid_rate(search, threads, args):
    """Steps from --start-rate by --factor until the verdict changes, then bisects
    (geometrically) --bisect-steps times. Returns (largest valid, smallest invalid, steps);
    either bound is None when the search never saw that verdict within its range."""
    steps = []

    def valid_at(rate):
        steps.append(search.measure(threads, rate))
        return steps[-1]["valid"]

    rate, floor, ceiling = grain(args.start_rate), grain(args.min_rate), grain(args.max_rate)
    valid, invalid = None, None
    if valid_at(rate):
        valid = rate
        while invalid is None and rate < ceiling:
            rate = min(grain(rate * args.factor), ceiling)
            if valid_at(rate):
                valid = rate
            else:
                invalid = rate
    else:
        invalid = rate
        while valid is None and rate > floor:
            rate = max(grain(rate / args.factor), floor)
            if valid_at(rate):
                valid = rate
            else:
                invalid = rate
    for _ in range(args.bisect_steps):
        if valid is None or invalid is None:
            break
        middle = grain(math.sqrt(valid * invalid))
        if middle in (valid, invalid):
            break
        if valid_at(middle):
            valid = middle
        else:
            invalid = middle
    return valid, invalid, steps


def main():
    source_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", required=True, help="a build with the bench targets (twin-epoll)")
    parser.add_argument("--threads", default="1,2", help="generator thread counts to search")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--size", type=int, default=64, help="bytes per message")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per run")
    parser.add_argument("--repeats", type=int, default=2, help="open-loop runs per rate, all valid to pass")
    parser.add_argument("--start-rate", type=float, default=60_000, help="msgs/s per thread of the first step")
    parser.add_argument("--min-rate", type=float, default=5_000, help="msgs/s per thread a search down stops at")
    parser.add_argument("--max-rate", type=float, default=400_000, help="msgs/s per thread a search up stops at")
    parser.add_argument("--factor", type=float, default=1.25, help="ratio between steps before bisecting")
    parser.add_argument("--bisect-steps", type=int, default=4)
    parser.add_argument("--max-send-lag-us", type=float, default=100.0, help="send-lag p99 a valid run stays under")
    parser.add_argument("--max-cpu", type=float, default=0.9, help="busy share past which a thread is invalid")
    parser.add_argument("--out", default=os.path.join(source_dir, "results", "open-loop-pacing.json"))
    args = parser.parse_args()
    started = time.monotonic()
    if args.repeats < 1 or args.factor <= 1 or args.bisect_steps < 0 or not 0 < args.min_rate <= args.start_rate <= args.max_rate:
        parser.error("--repeats >= 1, --factor > 1, --bisect-steps >= 0 and 0 < --min-rate <= --start-rate <= --max-rate")
    thread_counts = [int(t) for t in args.threads.split(",")]

    server, target = start_listener([os.path.join(args.build_dir, "bench", "twins", "twin-epoll"), "127.0.0.1:0"])
    search = Search(args, target)
    rows = []
    try:
        for threads in thread_counts:
            valid, invalid, steps = largest_valid_rate(search, threads, args)
            rows.append({"threads": threads, "client_cpus": client_cpus(threads),
                         "threads_share_a_core": threads > 1 and client_cpus(threads) == CLIENT_CPU,
                         "largest_valid_msgs_per_s_per_thread": valid,
                         "smallest_invalid_msgs_per_s_per_thread": invalid,
                         "steps": steps})
    finally:
        stop_server(server)

    bare_median = statistics.median(search.bare_rates)
    for row in rows:
        valid = row["largest_valid_msgs_per_s_per_thread"]
        row["ratio_to_bare_closed"] = valid * row["threads"] / bare_median if valid else None
        print(f"{row['threads']} thread(s): largest valid {valid or 0:,} msgs/s per thread "
              f"(first invalid {row['smallest_invalid_msgs_per_s_per_thread'] or 0:,}), "
              f"{row['ratio_to_bare_closed'] or 0:.2f} x the bare client's {bare_median:,.0f}")
    one = next((row for row in rows if row["threads"] == 1), None)
    result = {
        "benchmark": "open_loop_pacing",
        "description": "largest valid open-loop rate per echolab-loadgen thread against twin-epoll (raw), "
                       "beside echolab-bare-client closed loop on the same server and connections; target "
                       f">= {TARGET_PER_THREAD} msgs/s per thread and >= {TARGET_RATIO} x the bare client",
        "context": context(args.build_dir, started),
        "config": {"server": "twin-epoll", "connections": args.connections, "size_bytes": args.size,
                   "warmup_s": args.warmup, "duration_s": args.duration, "repeats": args.repeats,
                   "start_rate": args.start_rate, "min_rate": args.min_rate, "max_rate": args.max_rate, "factor": args.factor,
                   "bisect_steps": args.bisect_steps, "max_send_lag_us": args.max_send_lag_us,
                   "max_cpu": args.max_cpu, "server_cpu": SERVER_CPU, "client_cpu": CLIENT_CPU},
        "bare_closed": {"msgs_per_s": search.bare_rates, "median_msgs_per_s": bare_median},
        "results": rows,
        "target_met": bool(one and one["largest_valid_msgs_per_s_per_thread"]
                           and one["largest_valid_msgs_per_s_per_thread"] >= TARGET_PER_THREAD
                           and one["ratio_to_bare_closed"] >= TARGET_RATIO),
    }
    write_result(args.out, result)
    print(f"target met: {result['target_met']} -> {args.out}")


if __name__ == "__main__":
    sys.exit(main())
