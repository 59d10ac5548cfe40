"""echolab-bench command line: runs a spec's cells, repetitions interleaved, into a result set."""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

from . import callgrind as callgrind_mod
from . import engines as engines_mod
from . import host as host_mod
from . import cell as cells_mod
from . import knee as knee_mod
from . import sides as sides_mod
from . import spec as spec_mod

import echolab_home  # noqa: E402  (bench/, on the path beside runner/)

# A checkout's defaults are its release build and its results/; an installed copy's are the
# programs installed beside it and ./results, since the install tree is no place to write.
DEFAULT_BUILD_DIR = echolab_home.BIN_DIR or os.path.join(echolab_home.ROOT, "build", "release")
DEFAULT_OUT = "results" if echolab_home.INSTALLED else os.path.join(echolab_home.ROOT, "results")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="echolab-bench",
        description="Run a matrix of echolab engines and loads; write one JSON per cell and a manifest.")
    parser.add_argument("--spec", default="quick",
                        help=f"a shipped spec ({', '.join(spec_mod.shipped_specs())}) or a JSON file")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"directory under which <run-id>/ is created (default: {DEFAULT_OUT})")
    parser.add_argument("--run-id", help="name of the result set (default: UTC time and spec name)")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="override every cell's measured time")
    parser.add_argument("--repetitions", type=int, metavar="N", help="override the spec's repetitions")
    parser.add_argument("--server-cpus", metavar="LIST", help="CPUs for the server (taskset list); default: 0")
    parser.add_argument("--client-cpus", metavar="LIST", help="CPUs for the load generator; default: 1")
    parser.add_argument("--build-dir", default=DEFAULT_BUILD_DIR,
                        help="where echolab-server and echolab-loadgen are: a build folder or an installed "
                             f"bin/ (default: {DEFAULT_BUILD_DIR})")
    parser.add_argument("--only", metavar="TEXT", help="run only cells whose id contains TEXT")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any cell failed")
    parser.add_argument("--list", action="store_true", help="print the cells and exit")
    echolab_home.add_version_argument(parser)
    ab = parser.add_argument_group(
        "A/B runs", "run every cell for a baseline and a candidate in turn (A B, B A, ...), for echolab-compare")
    ab.add_argument("--baseline", metavar="BUILD_DIR", help="the baseline's build (default: --build-dir)")
    ab.add_argument("--candidate", metavar="BUILD_DIR", help="the candidate's build (default: --build-dir)")
    ab.add_argument("--baseline-server-args", metavar="ARGS", help="extra server options of the baseline, "
                    "e.g. \"--work cpu:50us\" (they replace the cell's value of the same option)")
    ab.add_argument("--candidate-server-args", metavar="ARGS", help="extra server options of the candidate")
    ab.add_argument("--aa", action="store_true",
                    help="also run the baseline a second time (side A2), to measure the noise floor in the same job")
    counts = parser.add_argument_group(
        "instruction counts", "after the timed cells, count user-space instructions per message under callgrind")
    counts.add_argument("--callgrind", action="store_true",
                        help="per engine and side, a fixed-count run under valgrind --tool=callgrind "
                             "(writes callgrind.json; echolab-compare judges instructions_per_msg)")
    counts.add_argument("--callgrind-messages", type=int, default=callgrind_mod.DEFAULT_MESSAGES, metavar="N",
                        help=f"messages per callgrind run (default {callgrind_mod.DEFAULT_MESSAGES})")
    counts.add_argument("--callgrind-repetitions", type=int, default=callgrind_mod.DEFAULT_REPETITIONS,
                        metavar="N", help="callgrind runs per engine and side, to measure their spread "
                                          f"(default {callgrind_mod.DEFAULT_REPETITIONS})")
    args = parser.parse_args(argv)
    if not 1 <= args.callgrind_messages <= 1000000:
        parser.error("--callgrind-messages must be from 1 to 1000000")
    if not 1 <= args.callgrind_repetitions <= 20:
        parser.error("--callgrind-repetitions must be from 1 to 20")
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be positive")
    if args.repetitions is not None and args.repetitions < 1:
        parser.error("--repetitions must be at least 1")
    return args


def default_cpus(args):
    cores = os.cpu_count() or 1
    if cores < 2:
        return {"server": args.server_cpus, "client": args.client_cpus}
    return {"server": args.server_cpus or "0", "client": args.client_cpus or "1"}


def binaries_in(build_dir):
    """The programs of a build folder (servers/, loadgen/) or of an installed bin/ (flat).
    "loadgen_mpi" is None when echolab-loadgen-mpi was not built (no MPI), "mpirun" None when
    there is none on PATH: only cells of more than one generator need them."""
    found = {"server": os.path.join(build_dir, "servers", "echolab-server"),
             "loadgen": os.path.join(build_dir, "loadgen", "echolab-loadgen")}
    flat = {"server": os.path.join(build_dir, "echolab-server"),
            "loadgen": os.path.join(build_dir, "echolab-loadgen")}
    if all(os.access(path, os.X_OK) for path in flat.values()):
        found = flat
    for name, path in found.items():
        if not os.access(path, os.X_OK):
            raise SystemExit(f"echolab-bench: no {name} binary at {path} (build first, or pass --build-dir)")
    loadgen_mpi = os.path.join(os.path.dirname(found["loadgen"]), "echolab-loadgen-mpi")
    return dict(found, loadgen_mpi=loadgen_mpi if os.access(loadgen_mpi, os.X_OK) else None,
                mpirun=shutil.which("mpirun"), window_file=_takes_option(found["loadgen"], "--window-file"))


def _takes_option(program, option):
    """Whether `program --help` lists `option`: an A/B run's baseline may be a build from
    before the option."""
    try:
        out = subprocess.run([program, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return option in out.stdout


def git_commit():
    """The runner's own commit: the checkout's, or the one recorded when it was installed."""
    return echolab_home.version_info()["git_commit"]


def build_info(binaries):
    try:
        out = subprocess.run([binaries["server"], "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def side_binaries(sides):
    """{side name: binaries with the side's server options}; every build is checked up front."""
    out = {}
    for side in sides:
        out[side.name] = dict(binaries_in(side.build_dir), server_args=side.server_args)
    return out


def schedule(cells, repetitions):
    """Repetitions interleaved (A B C A B C ...), each round starting one cell later, so that
    drift of this shared machine hits every engine alike."""
    plan = []
    for rep in range(repetitions):
        shift = rep % len(cells)
        for index in list(range(shift, len(cells))) + list(range(0, shift)):
            plan.append((index, rep))
    return plan


class Progress:
    def __init__(self, total):
        self.total, self.done, self.started = total, 0, time.monotonic()
        self.tty = sys.stderr.isatty()

    def show(self, label):
        if not self.tty:
            return
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - self.done) if self.done else 0
        width = 30
        filled = int(width * self.done / self.total)
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                         f"ETA {int(eta) // 60}m{int(eta) % 60:02d}s  {label[:40]:<40}")
        sys.stderr.flush()

    def finish(self):
        if self.tty:
            sys.stderr.write("\n")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        sides = sides_mod.sides_from_args(args)
    except sides_mod.SideError as error:
        raise SystemExit(f"echolab-bench: {error}")
    binaries = binaries_in(args.build_dir) if not sides else None
    per_side = side_binaries(sides)
    try:
        # The baseline's table names the engines: a candidate lacking one fails that cell.
        engine_table = engines_mod.load_engine_table((binaries or per_side["A"])["server"])
        spec = spec_mod.load_spec(args.spec)
        cells = spec_mod.expand_cells(spec, args.duration, engine_table)
    except (spec_mod.SpecError, engines_mod.EngineTableError) as error:
        raise SystemExit(f"echolab-bench: {error}")
    if args.only:
        cells = [c for c in cells if args.only in spec_mod.cell_id(c)]
        if not cells:
            raise SystemExit(f"echolab-bench: no cell id contains '{args.only}'")
    try:
        for build in [binaries] if binaries else per_side.values():
            spec_mod.check_generators_available(cells, build)
    except spec_mod.SpecError as error:
        raise SystemExit(f"echolab-bench: {error}")
    if args.callgrind and not shutil.which("valgrind"):
        raise SystemExit("echolab-bench: --callgrind needs valgrind (scripts/install-deps.sh installs it)")
    if args.list:
        for c in cells:
            print(spec_mod.cell_id(c))
        return 0
    if any(c["reference"] == "sockperf" or c["sockperf_client"] for c in cells) and not shutil.which("sockperf"):
        print("echolab-bench: sockperf not installed: its reference cells will be recorded as failed, and "
              "sockperf_client side runs as errors beside the load generator's numbers", file=sys.stderr)
    repetitions = args.repetitions or spec["repetitions"]
    cpus = default_cpus(args)
    run_id = args.run_id or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + spec["name"]
    out_dir = os.path.join(args.out, run_id)
    os.makedirs(os.path.join(out_dir, "cells"), exist_ok=True)
    manifest = {"schema": "echolab.bench-manifest/1", "run_id": run_id, "spec_name": spec["name"], "spec": spec,
                "repetitions": repetitions, "duration_override_s": args.duration, "cpus": cpus,
                "environment": host_mod.host_context(), "git_commit": git_commit(),
                "build": build_info(binaries or per_side["A"]),
                "start_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "engines": engine_table,
                "limits": {"nofile": dict(zip(("soft", "hard"), map(cells_mod.limit_value,
                                                                    resource.getrlimit(resource.RLIMIT_NOFILE))),
                                          note="the runner's own; a cell raises the soft limit for its server "
                                               "and load generator when it needs more (cells/<id>.json: limits)")},
                "cells": []}
    if sides:
        manifest["sides"] = {side.name: side.to_json(build_info(per_side[side.name])) for side in sides}
    # An A/B run takes each side in turn within every (cell, repetition) of the plan.
    plan = [(index, rep, side) for index, rep in schedule(cells, repetitions)
            for side in (sides_mod.side_order([s.name for s in sides], rep) if sides else [None])]
    progress = Progress(sum(knee_mod.runs_in_plan(cells[index]) if knee_mod.is_plan(cells[index]) else 1
                            for index, _, _ in plan))
    runs = {"total": 0, "failed": 0}

    def run_and_record(cell, name, side):
        """One measured run: its record written to cells/, its entry in the manifest."""
        if side:
            cell = dict(cell, side=side)  # keeps the sides apart for readers that group cells by their keys
        progress.show(name)
        record = cells_mod.run_cell(cell, per_side[side] if side else binaries, cpus)
        record["id"] = name
        entry = {"id": name, "file": f"cells/{name}.json", "status": record["status"]}
        nofile = (record.get("limits") or {}).get("nofile") or {}
        if nofile.get("raised_from") is not None:
            entry["nofile_raised"] = {"from": nofile["raised_from"], "to": nofile["soft"]}
        if side:
            record["side"] = entry["side"] = side
        with open(os.path.join(out_dir, "cells", name + ".json"), "w") as f:
            # Compact: a cell carries whole histograms, which indentation would blow up 5x.
            json.dump(record, f, separators=(",", ":"))
        manifest["cells"].append({**entry, **({"reason": record["reason"]} if record["status"] != "ok" else {})})
        runs["total"] += 1
        if record["status"] != "ok":
            runs["failed"] += 1
            if not progress.tty:
                print(f"echolab-bench: {name} failed: {record['reason']}", file=sys.stderr)
        progress.done += 1
        return record

    plan_states = {}
    for index, rep, side in plan:
        cell = dict(cells[index], repetition=rep)
        suffix = f"{'_' + side if side else ''}_r{rep}"
        if knee_mod.is_plan(cell):
            state = plan_states.setdefault((index, side), knee_mod.PlanState())
            summary = knee_mod.run_plan(cell, spec_mod.cell_id(cell), suffix,
                                        lambda derived, name: run_and_record(derived, name, side), state,
                                        time.monotonic)
            manifest.setdefault("knee", []).append({**summary, **({"side": side} if side else {})})
        else:
            run_and_record(cell, spec_mod.cell_id(cell) + suffix, side)
    progress.finish()
    if args.callgrind:
        manifest["callgrind"] = callgrind_mod.run(
            # The counts' own repetitions measure their spread: an A/A side would add nothing.
            cells, per_side if sides else {None: binaries},
            [s.name for s in sides if s.role != "baseline-again"] if sides else [None], cpus,
            args.callgrind_messages, args.callgrind_repetitions, out_dir, progress.show)
        progress.finish()
    manifest["end_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"echolab-bench: {runs['total'] - runs['failed']}/{runs['total']} cells ok; results in {out_dir}")
    return 1 if (args.strict and runs["failed"]) else 0
