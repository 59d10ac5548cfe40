"""echolab-compare --microbench BASE CAND: the Google Benchmark binaries of two builds, judged
with the same statistics and exit codes as the load tests.

BASE and CAND are build folders (their bench/*_bench binaries run here, A B, then B A, each
round --benchmark_repetitions times) or Google Benchmark JSON files (judged as they are).
Every repetition's CPU time is one sample; a benchmark regresses when its median CPU time
grows beyond the threshold, the U test rejects at alpha and the bootstrap interval of the
ratio of medians excludes 1. Google's own compare.py (libbenchmark-tools) runs the same U
test but only prints; the JSON this writes with --microbench-out can be fed to it as well."""
import json
import os
import re
import shutil
import subprocess
import types

from . import judge, report
from .metrics import Metric

BINARIES = ("core_bench", "histogram_bench")
TIME_UNITS_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
DEFAULT_THRESHOLD = 0.10
RUN_TIMEOUT_S = 300


class MicrobenchError(Exception):
    """Inputs that cannot be compared: one line, exit 2."""


def metric(threshold):
    return Metric("cpu_time", "CPU time", "ns", "lower", threshold)


def samples_of(document, source, prefix=""):
    """{benchmark name: [CPU time in ns per iteration, one per repetition]}; aggregates
    (mean, median, stddev) are skipped: the repetitions themselves are the samples."""
    if not isinstance(document, dict) or not isinstance(document.get("benchmarks"), list):
        raise MicrobenchError(f"{source} is not Google Benchmark JSON (no 'benchmarks' list)")
    out = {}
    for entry in document["benchmarks"]:
        if not isinstance(entry, dict) or entry.get("run_type", "iteration") != "iteration" \
                or entry.get("error_occurred"):
            continue
        scale = TIME_UNITS_NS.get(entry.get("time_unit", "ns"))
        value = entry.get("cpu_time")
        if scale is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise MicrobenchError(f"{source}: benchmark {entry.get('name')!r} has no usable cpu_time/time_unit")
        name = entry.get("run_name") or entry.get("name")
        out.setdefault(prefix + str(name), []).append(float(value) * scale)
    return out


def read_json(path):
    try:
        with open(path) as f:
            document = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MicrobenchError(f"cannot read {path}: {error}") from None
    return samples_of(document, path), document.get("context") or {}


def binaries_in(build_dir):
    found = {name: os.path.join(build_dir, "bench", name) for name in BINARIES}
    return {name: path for name, path in found.items() if os.access(path, os.X_OK)}


def run_binary(path, options, cpu):
    command = [path, f"--benchmark_repetitions={options.repetitions}", "--benchmark_format=json",
               f"--benchmark_min_time={options.min_time:g}"]
    if options.filter:
        command.append(f"--benchmark_filter={options.filter}")
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", cpu] + command
    try:
        out = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise MicrobenchError(f"{path} ran longer than {RUN_TIMEOUT_S}s") from None
    except OSError as error:
        raise MicrobenchError(f"cannot run {path}: {error.strerror}") from None
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        raise MicrobenchError(f"{path} failed: {last}")
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:
        raise MicrobenchError(f"{path} did not print JSON") from None


def run_builds(base_dir, cand_dir, options):
    """Both builds' binaries, interleaved: round r runs A then B, round r+1 B then A.
    Returns ({side: samples}, {side: merged Google Benchmark JSON}, context, notes)."""
    found = {"A": binaries_in(base_dir), "B": binaries_in(cand_dir)}
    common = [name for name in BINARIES if name in found["A"] and name in found["B"]]
    notes = [f"{name} only in the {'baseline' if name in found['A'] else 'candidate'}: not compared"
             for name in BINARIES if (name in found["A"]) != (name in found["B"])]
    if not common:
        raise MicrobenchError(f"no micro-benchmark binary ({', '.join(BINARIES)}) in both {base_dir}/bench and "
                              f"{cand_dir}/bench")
    cpu = "0" if (os.cpu_count() or 1) > 1 else None
    samples, merged, context = {"A": {}, "B": {}}, {"A": [], "B": []}, {}
    for round_index in range(options.rounds):
        order = ["A", "B"] if round_index % 2 == 0 else ["B", "A"]
        for name in common:
            for side in order:
                document = run_binary(found[side][name], options, cpu)
                context = context or document.get("context") or {}
                for bench_name, values in samples_of(document, found[side][name], name + "/").items():
                    samples[side].setdefault(bench_name, []).extend(values)
                for entry in document.get("benchmarks", []):
                    if entry.get("run_type", "iteration") == "iteration":
                        merged[side].append(dict(entry, name=f"{name}/{entry.get('name')}",
                                                 run_name=f"{name}/{entry.get('run_name', entry.get('name'))}"))
    return samples, {side: {"context": context, "benchmarks": entries} for side, entries in merged.items()}, \
        context, notes


def compare(base, cand, settings, threshold, sources, context, notes):
    """The comparison result, in echolab-compare's JSON shape (one cell per benchmark)."""
    common = [name for name in base if name in cand]
    if not common:
        raise MicrobenchError("no benchmark in both inputs")
    for name in list(base) + [n for n in cand if n not in base]:
        if name not in common:
            notes.append(f"{name} only in the {'baseline' if name in base else 'candidate'}: not compared")
    cells = []
    for name in common:
        judged = judge.judge_metric(metric(threshold), threshold, base[name], cand[name], settings)
        judged["gate"], judged["aa"] = True, None
        cells.append({"id": name, "cell": {"benchmark": name}, "status": "compared", "void_reasons": [],
                      "repetitions": {"baseline": len(base[name]), "candidate": len(cand[name])},
                      "metrics": [judged]})
    verdict, code = judge.overall(cells)
    summary = report.summary(verdict, cells, settings).replace("echolab-compare:", "micro-benchmarks:") \
        .replace(" cells", " benchmarks")
    settings_json = settings.to_json()
    settings_json["thresholds"] = {"cpu_time": threshold}
    settings_json["gate"] = ["cpu_time"]
    host = {"num_cpus": context.get("num_cpus"), "host_name": context.get("host_name")}
    return {"schema": "echolab.compare-result/1", "verdict": verdict, "exit_code": code, "summary": summary,
            "baseline": sources[0], "candidate": sources[1], "aa": None,
            "host": {k: v for k, v in host.items() if v is not None}, "settings": settings_json, "cells": cells,
            "notes": notes}


def source_info(path):
    return {"source": path, "run_id": None, "side": None, "build": None,
            "build_dir": path if os.path.isdir(path) else None, "server_args": [], "git_commit": None}


def write_merged(directory, merged):
    try:
        os.makedirs(directory, exist_ok=True)
        for side, document in merged.items():
            with open(os.path.join(directory, f"microbench-{side}.json"), "w") as f:
                json.dump(document, f, indent=1)
    except OSError as error:
        raise MicrobenchError(f"cannot write {directory}: {error.strerror}") from None


def run(args, settings):
    """The result of echolab-compare --microbench BASE CAND."""
    if len(args.inputs) != 2:
        raise MicrobenchError("--microbench wants BASE CAND (two build folders or two JSON files)")
    threshold = args.microbench_threshold
    if args.microbench_filter:
        try:
            re.compile(args.microbench_filter)
        except re.error as error:
            raise MicrobenchError(f"--microbench-filter: {error}") from None
    base_path, cand_path = args.inputs
    kinds = [os.path.isdir(p) for p in args.inputs]
    for path in args.inputs:
        if not os.path.exists(path):
            raise MicrobenchError(f"{path}: no such file or directory")
    if kinds[0] != kinds[1]:
        raise MicrobenchError("give two build folders or two JSON files, not one of each")
    notes = []
    if kinds[0]:
        options = types.SimpleNamespace(repetitions=args.microbench_repetitions, rounds=args.microbench_rounds,
                                        min_time=args.microbench_min_time, filter=args.microbench_filter)
        samples, merged, context, notes = run_builds(base_path, cand_path, options)
        if args.microbench_out:
            write_merged(args.microbench_out, merged)
        base, cand = samples["A"], samples["B"]
    else:
        (base, context), (cand, _) = read_json(base_path), read_json(cand_path)
    return compare(base, cand, settings, threshold, (source_info(base_path), source_info(cand_path)), context,
                   notes)
