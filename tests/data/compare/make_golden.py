#!/usr/bin/env python3
"""Writes the golden result sets of the echolab-compare tests (tests/bench/test_compare.py)
from two real cells of tests/data/small-results: the structure is the runner's, the numbers
are set here, seeded, so that each set has a known verdict. Run it again after changing it:

    python3 tests/data/compare/make_golden.py

Each cell keeps the load generator's and the server's real blocks minus what the comparison
never reads (interval series, the generator's own data, the load's configuration, most of the
context, uncorrected histograms); the
corrected histogram is replaced by a small one whose percentiles are the set's numbers."""
import copy
import json
import math
import os
import random
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(REPO, "plots"))
from echolab_plot import histogram as histogram_mod  # noqa: E402

SOURCE = os.path.join(REPO, "tests", "data", "small-results")
TEMPLATES = {"select": "select_tcp_closed_c1_s64_r0.json", "thread": "thread_tcp_closed_c1_s64_r0.json"}
# Per engine: throughput msg/s, p50/p99/p99.9 µs, server CPU µs per message, syscalls and
# context switches per message.
TRUTH = {"select": dict(tp=10000.0, p50=90.0, p99=400.0, p999=1500.0, cpu=20.0, sys=3.0, ctx=1.0),
         "thread": dict(tp=8000.0, p50=110.0, p99=500.0, p999=2000.0, cpu=25.0, sys=2.0, ctx=0.5)}
DURATION_S, WARMUP_MESSAGES = 0.5, 300
LAYOUT = histogram_mod.Layout(1000, 60000000000, 3)


def bucket_of(value_ns):
    low, high = 0, LAYOUT.counts_size - 1
    while low < high:  # bucket values grow with the index: the first whose top holds the value
        middle = (low + high) // 2
        if LAYOUT.highest_equivalent(middle) >= value_ns:
            high = middle
        else:
            low = middle + 1
    return low


def histogram(count, p50_us, p99_us, p999_us):
    """A histogram of `count` samples whose p50, p99 and p99.9 fall in the buckets of the given values."""
    ranks = [math.ceil(0.5 * count), math.ceil(0.99 * count), math.ceil(0.999 * count), count]
    values = [p50_us, p99_us, p999_us, p999_us * 1.5]
    counts, previous = {}, 0
    for rank, value in zip(ranks, values):
        index = bucket_of(int(value * 1000))
        counts[index] = counts.get(index, 0) + rank - previous
        previous = rank
    counts = {k: v for k, v in counts.items() if v}
    indexes = sorted(counts)
    return {"format": "echolab.histogram", "version": 1, "lowest": LAYOUT.lowest, "highest": LAYOUT.highest,
            "significant_digits": LAYOUT.significant_digits, "count": count, "below_range": 0, "above_range": 0,
            "min": LAYOUT.value_from_index(indexes[0]), "max": LAYOUT.highest_equivalent(indexes[-1]),
            "runs": [[i, counts[i]] for i in indexes]}


def summary(document):
    decoded = histogram_mod.Histogram.from_json(document)
    us = {f"{name}_us": decoded.value_at_percentile(p) / 1000.0
          for name, p in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9), ("p99_99", 99.99))}
    us.update(count=decoded.count, below_range=0, above_range=0, min_us=decoded.min / 1000.0,
              max_us=decoded.max / 1000.0, mean_us=decoded.mean() / 1000.0, stddev_us=0.0)
    return us


def trimmed(template):
    record = copy.deepcopy(template)
    loadgen = record["loadgen"]
    for key in ("intervals", "generator", "anomalies", "config", "run", "echolab"):
        loadgen.pop(key, None)
    loadgen["context"] = {k: loadgen["context"][k] for k in ("host_name", "cpu_model", "num_cpus", "kernel",
                                                             "machine", "build_type")}
    loadgen["histograms"] = {"unit": "ns"}
    for key in ("uncorrected", "send_lag"):
        loadgen["latency"].pop(key, None)
    return record


def rounded(value):
    """Floats to 6 significant digits: the files stay small and diff readably."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def current_counters():
    """The server counters today's schema requires: counters added since the template was
    measured read 0."""
    with open(os.path.join(REPO, "results", "schema", "server-stats.schema.json")) as f:
        schema = json.load(f)
    return schema["properties"]["counters"].get("required", [])


def cell_record(template, engine, rep, side, scale, noise, rng, host=None, invalid=None):
    """One repetition: the engine's truth scaled by `scale` (a dict of factors), each number
    jittered by up to +-noise."""
    truth = TRUTH[engine]

    def jitter(value, key):
        return value * scale.get(key, 1.0) * (1.0 + rng.uniform(-noise, noise))

    record = trimmed(template)
    record["cell"]["repetition"] = rep
    record["id"] = f"{engine}_tcp_closed_c1_s64{'_' + side if side else ''}_r{rep}"
    if side:
        record["side"] = record["cell"]["side"] = side
    loadgen, server = record["loadgen"], record["server"]
    throughput = jitter(truth["tp"], "tp")
    received = int(throughput * DURATION_S)
    loadgen["throughput"].update(msgs_per_s=received / DURATION_S, sent_msgs_per_s=received / DURATION_S,
                                 bytes_per_s=received * 68 / DURATION_S)
    loadgen["messages"].update(sent=received, received=received, bytes_sent=received * 68,
                               bytes_received=received * 68)
    corrected = histogram(received, jitter(truth["p50"], "p50"), jitter(truth["p99"], "p99"),
                          jitter(truth["p999"], "p999"))
    loadgen["histograms"]["corrected"] = corrected
    loadgen["latency"]["corrected"] = summary(corrected)
    if host:
        loadgen["context"].update(host)
    if invalid:
        loadgen["valid"], loadgen["invalid_reasons"] = False, [invalid]
    messages = received + WARMUP_MESSAGES
    stats = server["stats"]
    for counter in current_counters():
        stats["counters"].setdefault(counter, 0)
    if not isinstance(stats.get("workers"), list):
        stats["workers"] = []  # today a list of per-worker counts; none for these engines
    stats["counters"]["messages"] = messages
    syscalls = jitter(truth["sys"], "sys") * messages
    stats["syscalls_total"] = int(round(syscalls))
    stats["syscalls_per_message"] = stats["syscalls_total"] / messages
    cpu = jitter(truth["cpu"], "cpu") * messages / 1e6
    server["resources"].update(cpu_user_s=round(cpu * 0.3, 6), cpu_sys_s=round(cpu * 0.7, 6),
                               voluntary_ctxt_switches=int(jitter(truth["ctx"], "ctx") * messages),
                               involuntary_ctxt_switches=0)
    return record


def write_set(name, engines, reps, seed, sides=None, spec_name="compare-golden", compare_block=None):
    """sides: {side name or "": (scale, noise, extra)}; extra may hold host or invalid."""
    rng = random.Random(seed)
    directory = os.path.join(HERE, name)
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(os.path.join(directory, "cells"))
    templates = {e: json.load(open(os.path.join(SOURCE, "cells", TEMPLATES[e]))) for e in TEMPLATES}
    source_manifest = json.load(open(os.path.join(SOURCE, "manifest.json")))
    spec = {"name": spec_name, "repetitions": reps,
            "defaults": {"warmup_s": 0.2, "duration_s": DURATION_S, "timeout_s": 0.5, "connections": 1},
            "matrix": [{"engine": engines, "mode": "closed"}]}
    if compare_block:
        spec["compare"] = compare_block
    manifest = {key: source_manifest[key] for key in ("schema", "cpus", "environment", "git_commit", "build",
                                                       "start_utc", "end_utc")}
    manifest.update(run_id=name, spec_name=spec_name, spec=spec, repetitions=reps, duration_override_s=None,
                    cells=[])
    if any(sides):
        manifest["sides"] = {side: {"role": {"A": "baseline", "B": "candidate", "A2": "baseline-again"}[side],
                                    "build_dir": "build/release", "server_args": (sides[side][2] or {}).get("args", []),
                                    "build": manifest["build"]} for side in sides}
    for rep in range(reps):
        for engine in engines:
            order = list(sides) if rep % 2 == 0 else list(reversed(list(sides)))
            for side in order:
                scale, noise, extra = sides[side]
                extra = extra or {}
                invalid = extra.get("invalid") if rep in extra.get("invalid_reps", ()) else None
                scale_here = scale.get(engine, {}) if engine in scale else scale
                record = cell_record(templates[engine], engine, rep, side, scale_here, noise, rng,
                                     extra.get("host"), invalid)
                path = f"cells/{record['id']}.json"
                with open(os.path.join(directory, path), "w") as f:
                    json.dump(rounded(record), f, separators=(",", ":"), sort_keys=True)
                entry = {"id": record["id"], "file": path, "status": record["status"]}
                if side:
                    entry["side"] = side
                manifest["cells"].append(entry)
    with open(os.path.join(directory, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


QUIET = 0.01   # +-1 %: well inside every threshold, so a same-build comparison can pass
NOISY = 0.40   # +-40 %: no 5 % change can be told from this
SLOWER = {"select": {"tp": 0.80, "p50": 1.25, "p99": 1.30, "cpu": 1.25, "sys": 1.10}}
OTHER_HOST = {"cpu_model": "Intel(R) Xeon(R) Platinum 8375C", "num_cpus": 8}


def main():
    both = ["select", "thread"]
    write_set("base", both, 6, 1, {"": ({}, QUIET, None)})
    write_set("same", both, 6, 2, {"": ({}, QUIET, None)})
    write_set("slower", both, 6, 3, {"": (SLOWER, QUIET, None)})
    write_set("noisy", both, 6, 4, {"": ({}, NOISY, None)})
    write_set("few-base", ["select"], 3, 5, {"": ({}, QUIET, None)})
    write_set("few-candidate", ["select"], 3, 6, {"": ({}, QUIET, None)})
    write_set("invalid", both, 6, 7, {"": ({}, QUIET, {"invalid": "generator send lag p99 9.1 ms is over "
                                                                  "--max-send-lag 5.000 ms", "invalid_reps": [2]})})
    write_set("other-host", both, 2, 8, {"": ({}, QUIET, {"host": OTHER_HOST})})
    write_set("other-spec", ["select"], 2, 9, {"": ({}, QUIET, None)}, spec_name="other")
    write_set("ab", both, 6, 10, {"A": ({}, QUIET, None), "B": (SLOWER, QUIET, {"args": ["--work", "cpu:5us"]}),
                                  "A2": ({}, QUIET, None)},
              compare_block={"thresholds": {"p99": "15%"}})


if __name__ == "__main__":
    main()
