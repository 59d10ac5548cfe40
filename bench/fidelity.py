#!/usr/bin/python3
"""Does each echolab engine measure its concurrency model, or echolab's own overhead?

For each engine, runs echolab-loadgen against echolab-server --engine E and against its
twin, a minimal server of the same model with no echolab code (bench/twins/: accept-and-fork,
thread per connection, a select loop...; a raw echo, which answers the framed protocol
byte for byte). Both servers stay up for the pair; the runs alternate engine, twin, twin,
engine... (ABBA) over --rounds rounds, at 1 and 16 connections in closed loop (msgs/s) and
in connect mode (connect, one echo, close: connections/s) at 1 and 4. Server pinned to CPU
0, generator to CPU 1, 64-byte messages. Writes the median ratio engine / twin per pair and
mode, every round's rate, p50/p99, the generator's validity and the server tree's CPU per
message (or connection), the CPU ratio twin / engine beside it, and the host context.
Target: every ratio >= 0.9 (the engine costs at most 10 % over the bare model). A run whose
generator used more than 90 % of its core is kept (both sides of a pair meet the same
generator) and counted in generator_bound_runs: there the CPU ratio is the better guide.

Then the whole stack: echolab-loadgen against the `epoll` engine over
echolab-bare-client (the simplest epoll ping-pong loop, nothing recorded) against the epoll
twin, closed loop at --stack-connections, interleaved the same way: what echolab as a
whole costs over the bare client/server pair. Target: >= 0.9.

    bench/fidelity.py --build-dir build/release [--out results/fidelity.json]

Every run is bounded (the generator's --time-limit and a subprocess timeout); a server
that died or a run the generator called invalid is recorded with its reason, and the
run goes on. Standard library only (Debian's /usr/bin/python3).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from loadgen_overhead import pinned  # noqa: E402
from runner import procfs  # noqa: E402
from runner.cell import CellFailure, read_ready_line, start_server  # noqa: E402
from runner.comparison import KeptServer, context, write_result  # noqa: E402

# engine -> the twin of its model. prethread is prefork's model with threads, poll is
# select's loop over poll(): each is held to the nearest bare model.
TWINS = {"iterative": "iterative", "fork": "fork", "thread": "thread", "prefork": "prefork",
         "prethread": "prefork", "select": "select", "poll": "select", "epoll": "epoll"}
MODES = "closed:1,closed:16,connect:1,connect:4"
READY_TIMEOUT_S = 10
TARGET_RATIO = 0.9
GENERATOR_BOUND = 0.9  # echolab-loadgen's own default --max-cpu


def parse_modes(text):
    modes = []
    for item in text.split(","):
        mode, _, connections = item.partition(":")
        if mode not in ("closed", "connect") or not connections.isdigit() or int(connections) < 1:
            raise argparse.ArgumentTypeError(f"bad mode {item!r}: expected closed:N or connect:N")
        modes.append((mode, int(connections)))
    return modes


def engine_rows(server):
    done = subprocess.run([server, "--list-engines", "--json"], capture_output=True, text=True, timeout=30)
    return {row["name"]: row for row in json.loads(done.stdout)}


class Server(KeptServer):
    """One server (an engine or a twin) for a whole pair, restarted if it dies."""

    def __init__(self, command, cpu):
        super().__init__()
        self.command = pinned(command, cpu)
        self.target = None

    def launch(self):
        self.process = start_server(self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.target = read_ready_line(self.process, READY_TIMEOUT_S)  # kills it and raises if not ready

    def memory(self):
        """VmSize, VmRSS and VmPTE (kB) of the server process: what a fork has to copy."""
        found = {}
        try:
            with open(f"/proc/{self.process.pid}/status") as status:
                for line in status:
                    key, _, value = line.partition(":")
                    if key in ("VmSize", "VmRSS", "VmPTE", "Threads"):
                        found[key] = int(value.split()[0])
        except (OSError, ValueError):
            pass
        return found


def server_cpu_s(server):
    """CPU seconds of the server's process tree so far, its reaped children included."""
    totals = procfs.snapshot(server.process.pid)
    return totals["cpu_user_s"] + totals["cpu_sys_s"]


def run_loadgen(loadgen, server, mode, connections, args):
    """One generator run: its rate, latencies, validity and the server's CPU per message (or
    per connection), or the reason it has none. The CPU is the least noisy figure on a busy
    machine: it does not count the time the server waited for a CPU."""
    cpu_before = server_cpu_s(server)
    faults_before = procfs.minor_faults(server.process.pid)
    result = _run_loadgen(loadgen, server.target, mode, connections, args)
    units = result.pop("units", 0)
    if units:
        result["server_cpu_us_per_unit"] = (server_cpu_s(server) - cpu_before) / units * 1e6
        result["server_minor_faults_per_unit"] = (procfs.minor_faults(server.process.pid) - faults_before) / units
    return result


def _run_loadgen(loadgen, target, mode, connections, args):
    command = pinned([loadgen, "--target", target, "--mode", mode, "--connections", str(connections),
                      "--threads", "1", "--size", str(args.size), "--warmup", f"{args.warmup}s",
                      "--duration", f"{args.duration}s", "--timeout", "1s",
                      "--time-limit", f"{args.warmup + args.duration + 4}s",
                      # A generator at its limit still loads both sides of a pair alike: keep
                      # the run, and record its CPU share so the result says it was the limit.
                      "--max-cpu", "1",
                      "--json", "-", "--quiet", "--no-status"], args.client_cpu)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.warmup + args.duration + 15)
    except subprocess.TimeoutExpired:
        return {"valid": False, "reason": "echolab-loadgen did not finish in time"}
    try:
        result = json.loads(done.stdout)
    except ValueError:
        last = done.stderr.strip().splitlines()
        return {"valid": False, "reason": f"echolab-loadgen exit {done.returncode}: " + (last[-1] if last else "")}
    latency = result["latency"]["corrected"]
    errors = result["errors"]["total"]
    reasons = list(result.get("invalid_reasons", []))
    if errors:
        reasons.append(f"{errors} errors: " + ", ".join(f"{k} {v}" for k, v in result["errors"].items()
                                                          if v and k != "total"))
    return {"valid": bool(result["valid"]) and not errors, "reason": "; ".join(reasons) or None,
            "rate": result["throughput"]["msgs_per_s"], "p50_us": latency["p50_us"], "p99_us": latency["p99_us"],
            "bytes_received": result["messages"]["bytes_received"], "errors": errors,
            "generator_cpu_share": max(thread["cpu_share"] for thread in result["generator"]["threads"]),
            "units": result["messages"]["received"] + result["messages"]["warmup_messages"]}


def run_bare_client(bare_client, server, connections, args):
    """One run of echolab-bare-client: its rate and the server's CPU per message."""
    cpu_before = server_cpu_s(server)
    command = pinned([bare_client, server.target, str(connections), str(args.size), str(args.warmup),
                      str(args.duration)], args.client_cpu)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.warmup + args.duration + 15)
        result = json.loads(done.stdout)
    except subprocess.TimeoutExpired:
        return {"valid": False, "reason": "echolab-bare-client did not finish in time"}
    except ValueError:
        last = done.stderr.strip().splitlines()
        return {"valid": False, "reason": f"echolab-bare-client exit {done.returncode}: " + (last[-1] if last else "")}
    run = {"valid": True, "reason": None, "rate": result["msgs_per_s"]}
    units = result.get("messages", 0) + result.get("warmup_messages", 0)
    if units:
        run["server_cpu_us_per_unit"] = (server_cpu_s(server) - cpu_before) / units * 1e6
    return run


def measure_stack(connections, args, binaries):
    """echolab-loadgen + the epoll engine against echolab-bare-client + the epoll twin."""
    sides = {"engine": Server([binaries["server"], "--engine", "epoll", "--listen", "127.0.0.1:0"], args.server_cpu),
             "twin": Server([os.path.join(binaries["twins"], "twin-epoll"), "127.0.0.1:0"], args.server_cpu)}
    entry = {"mode": "closed", "connections": connections, "unit": "msgs_per_s",
             "engine_side": "echolab-loadgen -> echolab-server --engine epoll",
             "twin_side": "echolab-bare-client -> twin-epoll", "engine": [], "twin": []}
    try:
        for round_index in range(args.rounds):
            order = ("engine", "twin") if round_index % 2 == 0 else ("twin", "engine")
            for side in order:
                try:
                    sides[side].ensure_running()
                except CellFailure as failure:
                    entry[side].append({"valid": False, "reason": str(failure)})
                    continue
                if side == "engine":
                    entry[side].append(run_loadgen(binaries["loadgen"], sides[side], "closed", connections, args))
                else:
                    entry[side].append(run_bare_client(binaries["bare_client"], sides[side], connections, args))
        summarize(entry)
        print(format_row("stack", entry), flush=True)
    finally:
        for server in sides.values():
            server.stop()
    return entry


def measure_pair(engine, twin, modes, rows, args, binaries):
    sides = {"engine": Server([binaries["server"], "--engine", engine, "--listen", "127.0.0.1:0",
                               "--workers", str(args.workers), "--max-children", "1024",
                               "--max-threads", "1024"], args.server_cpu),
             "twin": Server([os.path.join(binaries["twins"], "twin-" + twin), "127.0.0.1:0",
                             "--workers", str(args.workers)], args.server_cpu)}
    pair = {"engine": engine, "twin": "twin-" + twin, "modes": [], "memory_kb": {}}
    try:
        for mode, connections in modes:
            entry = {"mode": mode, "connections": connections,
                     "unit": "connections_per_s" if mode == "connect" else "msgs_per_s",
                     "engine": [], "twin": []}
            pair["modes"].append(entry)
            if mode == "closed" and connections > 1 and rows.get(engine, {}).get("concurrency") == "one-at-a-time":
                entry["skipped"] = "serves one connection at a time: the others would only wait in the backlog"
                continue
            for round_index in range(args.rounds):
                order = ("engine", "twin") if round_index % 2 == 0 else ("twin", "engine")
                for side in order:
                    try:
                        died = sides[side].ensure_running()
                    except CellFailure as failure:
                        entry[side].append({"valid": False, "reason": str(failure)})
                        continue
                    if died:
                        entry.setdefault("server_restarts", []).append({"side": side, "reason": died})
                    pair["memory_kb"].setdefault(side, sides[side].memory())
                    entry[side].append(run_loadgen(binaries["loadgen"], sides[side], mode, connections, args))
            summarize(entry)
            print(format_row(engine, entry), flush=True)
    finally:
        for server in sides.values():
            server.stop()
    return pair


def summarize(entry):
    medians = {}
    for side in ("engine", "twin"):
        rates = [run["rate"] for run in entry[side] if run.get("valid")]
        medians[side] = statistics.median(rates) if rates else None
        entry[f"{side}_median"] = medians[side]
        entry[f"{side}_valid_runs"] = len(rates)
        # echolab-bare-client measures no latency.
        p99s = [run["p99_us"] for run in entry[side] if run.get("valid") and "p99_us" in run]
        entry[f"{side}_p99_median_us"] = statistics.median(p99s) if p99s else None
    entry["ratio"] = medians["engine"] / medians["twin"] if medians["engine"] and medians["twin"] else None
    # Runs whose generator used more than 90 % of its core: there the generator, not the
    # server, set the pace, and the rate ratio says less than the CPU ratio.
    entry["generator_bound_runs"] = sum(1 for side in ("engine", "twin") for run in entry[side]
                                        if run.get("valid") and run.get("generator_cpu_share", 0) > GENERATOR_BOUND)
    # Twin's CPU per unit over the engine's: the same ratio read from CPU time, not wall time.
    cpu = {side: [run["server_cpu_us_per_unit"] for run in entry[side]
                  if run.get("valid") and run.get("server_cpu_us_per_unit")] for side in ("engine", "twin")}
    for side in ("engine", "twin"):
        entry[f"{side}_cpu_us_per_unit_median"] = statistics.median(cpu[side]) if cpu[side] else None
    entry["cpu_ratio"] = (entry["twin_cpu_us_per_unit_median"] / entry["engine_cpu_us_per_unit_median"]
                          if cpu["engine"] and cpu["twin"] else None)
    # Page faults per message or connection: with fork, each child maps anew every page it
    # touches, so this is where a heavier child shows.
    for side in ("engine", "twin"):
        faults = [run["server_minor_faults_per_unit"] for run in entry[side]
                  if run.get("valid") and "server_minor_faults_per_unit" in run]
        entry[f"{side}_minor_faults_per_unit_median"] = statistics.median(faults) if faults else None


def format_row(engine, entry):
    ratio = f"{entry['ratio']:.2f}x" if entry.get("ratio") else "n/a"
    rates = " ".join(f"{side} {entry[f'{side}_median']:,.0f}" if entry.get(f"{side}_median") else f"{side} -"
                     for side in ("engine", "twin"))
    cpu = f"{entry['cpu_ratio']:.2f}x" if entry.get("cpu_ratio") else "n/a"
    bound = f"  generator-bound runs {entry['generator_bound_runs']}" if entry.get("generator_bound_runs") else ""
    return (f"{engine:10s} {entry['mode']:7s} c={entry['connections']:<3d} {rates} {entry['unit']}  ratio {ratio}"
            f"  cpu ratio {cpu}{bound}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", required=True, help="a build with ECHOLAB_BUILD_BENCH (the twins)")
    parser.add_argument("--engines", default=",".join(TWINS), help="engines to compare with their twins")
    parser.add_argument("--modes", type=parse_modes, default=parse_modes(MODES),
                        help=f"MODE:CONNECTIONS list (default {MODES})")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each side per mode (ABBA order)")
    parser.add_argument("--size", type=int, default=64, help="bytes per message")
    parser.add_argument("--warmup", type=float, default=0.3, help="seconds before each measured run")
    parser.add_argument("--duration", type=float, default=1.2, help="seconds measured per run")
    parser.add_argument("--workers", type=int, default=16, help="pool size of prefork, prethread and their twin")
    parser.add_argument("--stack-connections", type=int, default=16,
                        help="connections of the whole-stack comparison (0: skip it)")
    parser.add_argument("--server-cpu", default="0")
    parser.add_argument("--client-cpu", default="1")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "results", "fidelity.json"))
    args = parser.parse_args()
    engines = [name for name in args.engines.split(",") if name]
    unknown = [name for name in engines if name not in TWINS]
    if unknown or args.rounds < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error(f"unknown engine(s) {', '.join(unknown)} (known: {', '.join(TWINS)})" if unknown
                     else "--rounds must be >= 1, --duration > 0 and --warmup >= 0")
    binaries = {"server": os.path.join(args.build_dir, "servers", "echolab-server"),
                "loadgen": os.path.join(args.build_dir, "loadgen", "echolab-loadgen"),
                "twins": os.path.join(args.build_dir, "bench", "twins"),
                "bare_client": os.path.join(args.build_dir, "bench", "echolab-bare-client")}
    stack_binaries = ((binaries["bare_client"], os.path.join(binaries["twins"], "twin-epoll"))
                      if args.stack_connections > 0 else ())
    for path in (binaries["server"], binaries["loadgen"], *stack_binaries, *(os.path.join(binaries["twins"], "twin-" + TWINS[e])
                                                           for e in engines)):
        if not os.access(path, os.X_OK):
            sys.exit(f"fidelity.py: no binary at {path} (build with ECHOLAB_BUILD_BENCH first)")
    rows = engine_rows(binaries["server"])
    started = time.monotonic()
    pairs = [measure_pair(engine, TWINS[engine], args.modes, rows, args, binaries) for engine in engines]
    stack = measure_stack(args.stack_connections, args, binaries) if args.stack_connections > 0 else None
    ratios = [entry["ratio"] for pair in pairs for entry in pair["modes"] if entry.get("ratio")]
    if stack and stack.get("ratio"):
        ratios.append(stack["ratio"])
    result = {
        "benchmark": "fidelity",
        "description": "median rate of echolab-server --engine E over the same model's minimal twin "
                       "(bench/twins), interleaved ABBA; target ratio >= 0.9",
        "context": context(args.build_dir, started),
        "config": {"size_bytes": args.size, "warmup_s": args.warmup, "duration_s": args.duration,
                   "rounds": args.rounds, "workers": args.workers, "server_cpu": args.server_cpu,
                   "client_cpu": args.client_cpu, "target_ratio": TARGET_RATIO},
        "pairs": pairs,
        "stack": stack,
        "min_ratio": min(ratios) if ratios else None,
    }
    write_result(args.out, result)
    print(f"minimum ratio {result['min_ratio']:.2f} -> {args.out}" if ratios else f"no ratio -> {args.out}")


if __name__ == "__main__":
    main()
