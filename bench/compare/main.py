"""echolab-compare command line. Exit codes: 0 no regression, 1 regression, 2 inputs that
cannot be compared, 3 inconclusive (too few repetitions, too much noise, or void cells)."""
import argparse
import json
import os
import sys

from . import callgrind, judge, load, metrics, microbench, report

import echolab_home  # noqa: E402  (bench/, on the path beside compare/)

EXIT_PASS, EXIT_REGRESSION, EXIT_UNCOMPARABLE, EXIT_INCONCLUSIVE = 0, 1, 2, 3
HOST_KEYS = ("cpu_model", "num_cpus", "kernel")


class Refusal(Exception):
    """Inputs that cannot be compared: one line, exit 2."""


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="echolab-compare",
        description="Is the candidate slower than the baseline? Give two result sets (or two load generator "
                    "JSON files), or one A/B result set of echolab-bench --baseline/--candidate.",
        epilog="Exit status: 0 no regression, 1 regression, 2 inputs that cannot be compared, 3 inconclusive.")
    parser.add_argument("inputs", nargs="+", metavar="RESULTS", help="BASELINE CANDIDATE, or one A/B result set")
    parser.add_argument("--markdown", metavar="FILE", help="write the pull-request table to FILE ('-': stdout)")
    parser.add_argument("--json", metavar="FILE", help="write the full comparison as JSON to FILE ('-': stdout)")
    parser.add_argument("--alpha", type=float, help="significance level of the U test (default 0.01, or the spec's)")
    parser.add_argument("--threshold", action="append", metavar="METRIC=VALUE",
                        help="override a metric's threshold, e.g. throughput=3%% (repeatable)")
    parser.add_argument("--allow-different-hosts", action="store_true",
                        help="compare results measured on different machines anyway")
    parser.add_argument("--quiet", action="store_true", help="no console table")
    echolab_home.add_version_argument(parser)
    micro = parser.add_argument_group(
        "micro-benchmarks", "echolab-compare --microbench BASE CAND: two build folders (their bench/*_bench "
        "binaries run here, interleaved) or two Google Benchmark JSON files")
    micro.add_argument("--microbench", action="store_true", help="compare Google Benchmark micro-benchmarks")
    micro.add_argument("--microbench-repetitions", type=int, default=5, metavar="N",
                       help="--benchmark_repetitions of each run (default 5)")
    micro.add_argument("--microbench-rounds", type=int, default=3, metavar="N",
                       help="runs of each binary per build, A B then B A (default 3)")
    micro.add_argument("--microbench-min-time", type=float, default=0.05, metavar="SECONDS",
                       help="--benchmark_min_time (default 0.05)")
    micro.add_argument("--microbench-filter", metavar="REGEX", help="--benchmark_filter")
    micro.add_argument("--microbench-threshold", type=_fraction, default=microbench.DEFAULT_THRESHOLD,
                       metavar="VALUE", help=f"smallest CPU-time growth that counts, e.g. 5%% (default "
                                             f"{microbench.DEFAULT_THRESHOLD * 100:g}%%)")
    micro.add_argument("--microbench-out", metavar="DIR",
                       help="keep each build's runs there as Google Benchmark JSON (microbench-A/B.json)")
    args = parser.parse_args(argv)
    if args.microbench and not (1 <= args.microbench_repetitions <= 100 and 1 <= args.microbench_rounds <= 100
                                and 0 < args.microbench_min_time <= 60):
        parser.error("--microbench-repetitions and --microbench-rounds must be 1 to 100, "
                     "--microbench-min-time above 0 and at most 60")
    if len(args.inputs) > 2:
        parser.error("give BASELINE CANDIDATE, or one A/B result set")
    return args


def _fraction(text):
    try:
        return metrics.parse_threshold("--microbench-threshold", text if text.strip().endswith("%") else float(text))
    except (metrics.ConfigError, ValueError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _single_side(sides, path):
    if len(sides) != 1:
        raise Refusal(f"{path} is an A/B result set (sides {', '.join(sorted(sides))}): compare it alone")
    return next(iter(sides.values()))


def pick_sides(args):
    """(baseline, candidate, aa or None, baseline manifest)."""
    if len(args.inputs) == 1:
        sides, manifest = load.load(args.inputs[0])
        if "A" not in sides or not ({"B", "A2"} & set(sides)):
            raise Refusal(f"{args.inputs[0]} is not an A/B result set (no sides A and B): "
                          "give BASELINE and CANDIDATE")
        candidate = sides.get("B") or sides["A2"]
        aa = sides.get("A2") if "B" in sides else None
        return sides["A"], candidate, aa, manifest
    base_sides, manifest = load.load(args.inputs[0])
    cand_sides, cand_manifest = load.load(args.inputs[1])
    baseline, candidate = _single_side(base_sides, args.inputs[0]), _single_side(cand_sides, args.inputs[1])
    return baseline, candidate, None, manifest


def check_hosts(baseline, candidate, allow):
    differences = [f"{key} {baseline.host[key]!r} vs {candidate.host[key]!r}" for key in HOST_KEYS
                   if key in baseline.host and key in candidate.host and baseline.host[key] != candidate.host[key]]
    if differences and not allow:
        raise Refusal("measured on different hosts (" + "; ".join(differences)
                      + "): pass --allow-different-hosts to compare anyway")
    return [f"measured on different hosts: {'; '.join(differences)}"] if differences else []


def check_cells(baseline, candidate, aa, ab_run):
    what = "missing cells" if ab_run else "different specs"
    for other, role in ((candidate, "candidate"), (aa, "A/A")):
        if other is None:
            continue
        only_base = [baseline.cells[k].label for k in baseline.cells if k not in other.cells]
        only_other = [other.cells[k].label for k in other.cells if k not in baseline.cells]
        if only_base or only_other:
            parts = []
            if only_base:
                parts.append(f"only in baseline: {', '.join(only_base[:5])}" + (" …" if len(only_base) > 5 else ""))
            if only_other:
                parts.append(f"only in {role}: {', '.join(only_other[:5])}" + (" …" if len(only_other) > 5 else ""))
            raise Refusal(f"{what}: " + "; ".join(parts))
    if not baseline.cells:
        raise Refusal("no cells to compare")


def settings_for(args, manifest):
    settings = metrics.Settings()
    spec = (manifest or {}).get("spec") or {}
    metrics.apply_spec(settings, spec.get("compare"))
    if args.alpha is not None:
        settings.alpha = metrics.parse_alpha(args.alpha)
    metrics.apply_overrides(settings, args.threshold)
    return settings


def instruction_cells(args, settings, notes):
    """The callgrind counts' cells (echolab-bench --callgrind), when the inputs have them."""
    if not all(os.path.isdir(path) for path in args.inputs):
        return []
    if len(args.inputs) == 1:
        runs = callgrind.load_runs(args.inputs[0])
        if runs is None:
            return []
        sides = set(runs["values"]) | set(runs["failed"])
        candidate = "B" if "B" in sides else "A2"
        return callgrind.compare_cells(runs, runs, "A", candidate, settings, callgrind.METRIC in settings.gate)
    base, cand = (callgrind.load_runs(path) for path in args.inputs)
    if base is None and cand is None:
        return []
    if base is None or cand is None:
        notes.append(f"callgrind counts only in {args.inputs[0] if cand is None else args.inputs[1]}: not compared")
        return []
    return callgrind.compare_cells(base, cand, _only_side(base), _only_side(cand), settings,
                                   callgrind.METRIC in settings.gate)


def _only_side(runs):
    return next(iter(set(runs["values"]) | set(runs["failed"])), "")


def compare(args):
    baseline, candidate, aa, manifest = pick_sides(args)
    settings = settings_for(args, manifest)
    notes = check_hosts(baseline, candidate, args.allow_different_hosts)
    check_cells(baseline, candidate, aa, len(args.inputs) == 1)
    cells = [judge.compare_cell(cell, candidate.cells[key], settings, aa.cells[key] if aa else None)
             for key, cell in baseline.cells.items()]
    cells += instruction_cells(args, settings, notes)
    for cell in cells:
        if cell["status"] == "skipped":
            notes.append(f"{cell['id']}: not compared: {cell['skipped_reason']}")
        for metric in cell["metrics"]:
            if metric.get("aa") and metric["aa"]["verdict"] == "regression" and metric["gate"]:
                notes.append(f"A/A false alarm: {cell['id']} {metric['metric']} differs between two runs of the "
                             "same baseline; this machine is noisier than the thresholds assume")
    verdict, code = judge.overall(cells)
    return {"schema": "echolab.compare-result/1", "verdict": verdict, "exit_code": code,
            "summary": report.summary(verdict, cells, settings),
            "baseline": baseline.info, "candidate": candidate.info, "aa": aa.info if aa else None,
            "host": baseline.host, "settings": settings.to_json(), "cells": cells, "notes": notes}


def _write(path, text):
    if path == "-":
        sys.stdout.write(text)
        return
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as error:
        raise Refusal(f"cannot write {path}: {error.strerror}") from None


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = microbench.run(args, settings_for(args, None)) if args.microbench else compare(args)
        if args.markdown:
            _write(args.markdown, report.markdown(result))
        if args.json:
            _write(args.json, json.dumps(result, indent=1) + "\n")
    except (Refusal, load.InputError, metrics.ConfigError, callgrind.FormatError,
            microbench.MicrobenchError) as error:
        print(f"echolab-compare: {error}", file=sys.stderr)
        return EXIT_UNCOMPARABLE
    if not args.quiet and "-" not in (args.markdown, args.json):
        sys.stdout.write(report.console(result))
    elif not args.quiet:
        sys.stderr.write(report.console(result))
    return result["exit_code"]
