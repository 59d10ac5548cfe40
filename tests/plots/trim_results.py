#!/usr/bin/python3
"""Trims a real echolab-bench result set into tests/data/small-results (kept under ~300 KB).

    bench/echolab-bench --spec tests/plots/small-results-spec.json --run-id small-results --out /tmp/r
    tests/plots/trim_results.py /tmp/r/small-results tests/data/small-results [CONDITION ...]

CONDITIONs (cell ids without the _rN suffix) are left out. What is dropped, and why:
  * the uncorrected, send-lag and per-interval histograms (echolab-plot draws only the
    corrected one), except in KEEP_ALL_HISTOGRAMS, which the decoder test checks for all
    three histogram layouts;
  * the corrected histogram of every cell but the closed-loop TCP cells without service
    work, the only ones the latency spectrum draws (the others use the summaries).
Cell files are rewritten as compact JSON; every number is left as the run wrote it.
"""
import json
import os
import shutil
import sys

KEEP_ALL_HISTOGRAMS = "select_tcp_closed_c8_s64_r0"


def feeds_the_spectrum(cell):
    return cell.get("mode") == "closed" and cell.get("transport") == "tcp" and cell.get("work") == "none"


def trim(source, target, left_out):
    with open(os.path.join(source, "manifest.json")) as f:
        manifest = json.load(f)
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(os.path.join(target, "cells"))
    kept = []
    for entry in manifest["cells"]:
        if entry["id"].rsplit("_r", 1)[0] in left_out:
            continue
        with open(os.path.join(source, entry["file"])) as f:
            record = json.load(f)
        histograms = (record.get("loadgen") or {}).get("histograms")
        if histograms is not None and entry["id"] != KEEP_ALL_HISTOGRAMS:
            for key in ("uncorrected", "send_lag", "intervals"):
                histograms.pop(key, None)
            if not feeds_the_spectrum(record.get("cell") or {}):
                histograms.pop("corrected", None)
        with open(os.path.join(target, entry["file"]), "w") as f:
            json.dump(record, f, separators=(",", ":"), sort_keys=True)
            f.write("\n")
        kept.append(entry)
    manifest["cells"] = kept
    with open(os.path.join(target, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    trim(sys.argv[1], sys.argv[2], set(sys.argv[3:]))
