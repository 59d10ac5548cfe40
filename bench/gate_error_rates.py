#!/usr/bin/env python3
"""How often does the gate cry wolf, and how often does it catch a real regression?

Runs the gate N times on one build against itself (A/A: every exit 1 is a false alarm) and N
times against the same build with an injected cost per message (--candidate-server-args
"--work cpu:2us" by default: every exit other than 1 is a miss), alternating the two kinds so
that the machine's drift hits both, and writes the counts, the rates and every run's exit
status and summary to results/gate-error-rates.json.

    bench/gate_error_rates.py --build-dir build/release --aa-runs 30 --injected-runs 20

Each run is a full echolab-bench A/B run of the spec (with --callgrind unless
--no-callgrind), about 100 s each on 2 cores: 30 + 20 runs take about an hour and a half."""
import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BENCH, COMPARE = os.path.join(HERE, "echolab-bench"), os.path.join(HERE, "echolab-compare")
RUN_TIMEOUT_S = 3600


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="gate_error_rates.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", default=os.path.join(REPO, "build", "release"),
                        help="the build measured against itself (default build/release)")
    parser.add_argument("--aa-runs", type=int, default=30, metavar="N",
                        help="runs of the build against itself (default 30)")
    parser.add_argument("--injected-runs", type=int, default=20, metavar="N",
                        help="runs against the build with the injected cost (default 20)")
    parser.add_argument("--spec", default="ci", help="the echolab-bench spec (default ci)")
    parser.add_argument("--inject", default="--work cpu:2us", metavar="ARGS",
                        help="the candidate's server options in the regression runs (default \"--work cpu:2us\")")
    parser.add_argument("--candidate-build", metavar="DIR",
                        help="the regression runs' candidate is this build (a commit with a known regression), "
                             "with --inject \"\" for no injected options")
    parser.add_argument("--no-callgrind", action="store_true", help="judge the timings alone")
    parser.add_argument("--out", default=os.path.join(REPO, "results", "gate-error-rates.json"), metavar="FILE",
                        help="where the rates go (default results/gate-error-rates.json)")
    parser.add_argument("--keep", metavar="DIR",
                        help="keep every run's result set under DIR; runs already judged there are counted, "
                             "not run again (resume an interrupted measurement)")
    parser.add_argument("--from-kept", metavar="DIR",
                        help="run nothing: recount the runs a --keep DIR holds and write the rates")
    args = parser.parse_args(argv)
    for flag, runs in (("--aa-runs", args.aa_runs), ("--injected-runs", args.injected_runs)):
        if not 0 <= runs <= 1000:
            parser.error(f"{flag} must be from 0 to 1000")
    if args.aa_runs + args.injected_runs == 0:
        parser.error("nothing to run: --aa-runs and --injected-runs are both 0")
    try:
        if not shlex.split(args.inject) and not args.candidate_build:
            parser.error("--inject must name at least one server option (or give --candidate-build)")
    except ValueError as error:
        parser.error(f"--inject: {error}")
    for build, flag in ((args.build_dir, "--build-dir"), (args.candidate_build, "--candidate-build")):
        for folder, name in (("servers", "echolab-server"), ("loadgen", "echolab-loadgen")):
            if build is not None and not os.access(os.path.join(build, folder, name), os.X_OK):
                parser.error(f"no {name} in {build}/{folder} (build first, or pass {flag})")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        parser.error(f"--out: no folder {out_dir}")
    return args


def one_run(args, kind, index, results):
    run_id = f"{kind}-{index:03d}"
    shutil.rmtree(os.path.join(results, run_id), ignore_errors=True)  # an interrupted run's leftovers
    candidate = args.candidate_build if kind == "injected" and args.candidate_build else args.build_dir
    command = [sys.executable, BENCH, "--spec", args.spec, "--baseline", args.build_dir, "--candidate",
               candidate, "--out", results, "--run-id", run_id]
    if kind == "injected" and args.inject.strip():
        command.append("--candidate-server-args=" + args.inject)
    if not args.no_callgrind:
        command.append("--callgrind")
    started = time.monotonic()
    bench = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    if bench.returncode != 0:
        return {"kind": kind, "run_id": run_id, "exit_code": None, "flagged_metrics": [], "detectable": {},
                "summary": "echolab-bench failed: " + (bench.stderr.strip().splitlines() or ["?"])[-1]}
    verdict_path = os.path.join(results, run_id, "compare.json")
    judged = subprocess.run([sys.executable, COMPARE, "--quiet", os.path.join(results, run_id), "--json",
                             verdict_path], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    run = read_verdict(kind, run_id, verdict_path, judged.returncode)
    run["seconds"] = round(time.monotonic() - started, 1)
    if not run["summary"]:
        run["summary"] = judged.stderr.strip()
    return run


def read_verdict(kind, run_id, verdict_path, exit_code):
    """One run's outcome from echolab-compare's JSON: its exit status, the gating metrics it
    flagged, and per metric the largest change it could not have told from noise (over the
    compared cells), which is what the thresholds have to sit above."""
    run = {"kind": kind, "run_id": run_id, "exit_code": exit_code, "flagged_metrics": [], "summary": "",
           "detectable": {}}
    if not os.path.isfile(verdict_path):
        return run
    with open(verdict_path) as f:
        verdict = json.load(f)
    run["summary"] = verdict.get("summary", "")
    metrics = [m for c in verdict.get("cells", []) for m in c.get("metrics", []) if m.get("gate")]
    run["flagged_metrics"] = sorted({m["metric"] for m in metrics if m.get("verdict") == "regression"})
    for m in metrics:
        if m.get("detectable_change") is not None:
            worst = run["detectable"].get(m["metric"], 0.0)
            run["detectable"][m["metric"]] = max(worst, m["detectable_change"])
    return run


def runs_from_folder(folder):
    """The runs a --keep folder holds (aa-000, injected-000, ...), judged as they were."""
    runs = []
    for name in sorted(os.listdir(folder)):
        kind, _, index = name.rpartition("-")
        path = os.path.join(folder, name, "compare.json")
        if kind in ("aa", "injected") and index.isdigit() and os.path.isfile(path):
            with open(path) as f:
                exit_code = json.load(f).get("exit_code")
            runs.append(read_verdict(kind, name, path, exit_code))
    return runs


def noise(runs):
    """Per gating metric over the A/A runs: how often it could not rule out a change of its
    threshold's size, and the smallest change the runs could have detected (median, 90th
    percentile), in the worst cell of each run."""
    out = {}
    aa = [r for r in runs if r["kind"] == "aa"]
    for metric in sorted({m for r in aa for m in r.get("detectable", {})}):
        values = sorted(r["detectable"][metric] for r in aa if metric in r.get("detectable", {}))
        out[metric] = {"runs": len(values), "detectable_median": statistics.median(values),
                       "detectable_p90": values[min(len(values) - 1, int(0.9 * len(values)))]}
    return out


def rates(runs):
    def count(kind, codes):
        return sum(1 for r in runs if r["kind"] == kind and r["exit_code"] in codes)
    aa = sum(1 for r in runs if r["kind"] == "aa")
    injected = sum(1 for r in runs if r["kind"] == "injected")
    false_alarms, caught = count("aa", (1,)), count("injected", (1,))

    def per_metric(kind):
        tally = {}
        for r in runs:
            if r["kind"] == kind:
                for metric in r.get("flagged_metrics", []):
                    tally[metric] = tally.get(metric, 0) + 1
        return dict(sorted(tally.items()))
    timings_caught = sum(1 for r in runs if r["kind"] == "injected"
                         and any(m != "instructions_per_msg" for m in r.get("flagged_metrics", [])))
    return {"aa_runs": aa, "false_alarms": false_alarms,
            "specificity": None if not aa else 1 - false_alarms / aa,
            "false_alarms_per_metric": per_metric("aa"),
            "injected_runs": injected, "caught": caught, "sensitivity": None if not injected else caught / injected,
            "caught_per_metric": per_metric("injected"), "caught_without_instruction_counts": timings_caught,
            "noise_per_metric": noise(runs),
            "inconclusive": {"aa": count("aa", (3,)), "injected": count("injected", (3,))},
            "failed": {"aa": count("aa", (2, None)), "injected": count("injected", (2, None))}}


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.from_kept:
        return write_rates(args, runs_from_folder(args.from_kept))
    results = args.keep or tempfile.mkdtemp(prefix="echolab-gate-rates-")
    os.makedirs(results, exist_ok=True)
    # A run judged earlier into the same --keep folder (a session cut short) is counted, not run again.
    done = {r["run_id"]: r for r in runs_from_folder(results)}
    runs = []
    wanted = {"aa": args.aa_runs, "injected": args.injected_runs}
    for index in range(max(wanted.values())):
        for kind in (("aa", "injected") if index % 2 == 0 else ("injected", "aa")):
            if index < wanted[kind]:
                run_id = f"{kind}-{index:03d}"
                runs.append(done.get(run_id) or one_run(args, kind, index, results))
                print(f"gate_error_rates: {kind} {index + 1}/{wanted[kind]}: exit {runs[-1]['exit_code']} "
                      f"{' '.join(runs[-1]['flagged_metrics'])}", file=sys.stderr, flush=True)
    write_rates(args, runs)
    if not args.keep:
        shutil.rmtree(results, ignore_errors=True)
    return 0


def write_rates(args, runs):
    candidate_build = args.candidate_build and os.path.abspath(args.candidate_build)
    document = {"schema": "echolab.gate-error-rates/1", "spec": args.spec, "build_dir": os.path.abspath(args.build_dir),
                "candidate_build": candidate_build, "inject": args.inject, "callgrind": not args.no_callgrind,
                "command": " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO)] + sys.argv[1:]),
                "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **rates(runs), "runs": runs}
    with open(args.out, "w") as f:
        json.dump(document, f, indent=1)
    print(f"gate_error_rates: specificity {document['specificity']}, sensitivity {document['sensitivity']}; "
          f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
