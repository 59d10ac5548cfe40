#!/usr/bin/env python3
"""Merges the robustness suite's <case>.json files into results/robustness.json.

Every measuring robustness test (bad input, faults, limits, slow clients, namespaces...) writes one JSON object,
{"case": ..., "engine": ..., <figures with units in their keys>}, into the directory
$ECHOLAB_ROBUSTNESS_OUT (by default <build dir>/robustness). This script gathers them,
adds where and when they were measured, summarises the figures the README reports per
case and engine, and checks the ones that must be zero.

    tests/robustness/collect.py BUILD_DIR/robustness --out results/robustness.json
    tests/robustness/collect.py BUILD_DIR/robustness --markdown      # table for README
    tests/robustness/collect.py BUILD_DIR/robustness --out X --markdown --check

--check exits 1 when a must-be-zero figure (zombies, leaked descriptors, bytes lost on a
TCP case that promises none) is not. With --junit (ctest --output-junit FILE), the file
also records each class of defect the suite guards against, with the tests that guard it
and whether they passed in that run; --check then also fails on a class whose test failed
or did not run. Python 3 standard library only.
"""

import argparse
import datetime
import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

SCHEMA = "echolab/robustness"
SCHEMA_VERSION = 1
REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
from runner.host import host_context  # noqa: E402

# Summary figures and the keys the tests write them under (first present wins). Both
# parts name the same thing slightly differently in places; this is the one mapping.
FIGURES = {
    "bad_inputs_tried": ["bad_inputs_tried"],
    "faults_injected": ["faults_injected"],
    "connections_refused_counted": ["connections_refused_counted", "connections_refused"],
    "bytes_lost": ["bytes_lost", "legit_bytes_lost"],
    "peak_rss_per_non_reader_kib": ["peak_rss_per_non_reader_kib"],
    "zombies_after": ["zombies_after", "zombies"],
    "leaked_fds_after": ["leaked_fds_after", "leaked_fds"],
    "legit_p99_under_slowloris_us": ["legit_p99_us"],
    "legit_max_under_slowloris_us": ["legit_max_us"],
    "idle_timeouts_counted": ["idle_timeouts"],
    "udp_lost": ["datagrams_lost"],
    "udp_duplicates": ["duplicates"],
    "udp_reordered": ["reordered"],
}

# Figures that must be zero wherever they are reported.
MUST_BE_ZERO = ["zombies_after", "leaked_fds_after"]
MARKDOWN_COLUMNS = [
    ("test", "case"),
    ("engine", "engine"),
    ("bad_inputs_tried", "bad inputs"),
    ("faults_injected", "faults injected"),
    ("connections_refused_counted", "refused (counted)"),
    ("bytes_lost", "bytes lost"),
    ("peak_rss_per_non_reader_kib", "RSS per non-reader (KiB)"),
    ("zombies_after", "zombies"),
    ("leaked_fds_after", "leaked fds"),
    ("legit_p99_under_slowloris_us", "legit p99 under slowloris (µs)"),
    ("legit_max_under_slowloris_us", "legit max (µs)"),
]


# The classes of defect an adversarial test found, each guarded by regression tests (ctest
# names) that run in the default suite. A class is "guarded" in a run when all its tests ran
# and passed.
REGRESSION_CLASSES = [
    ("a half-closed client gets everything owed before the close (every stream engine)",
     ["robustness_half_close_test"]),
    ("datagram replies never block the server; refused replies are counted",
     ["robustness_datagram_replies_test"]),
    ("an engine's own descriptors past what it can watch: refused before the ready line",
     ["robustness_own_descriptors_test"]),
    ("stray signals are ignored or stop cleanly; a signalled prefork worker is replaced; "
     "children die with their parent", ["robustness_signals_test"]),
    ("the benchmark runner kills a cell's whole process group", ["robustness_runner_group"]),
    ("service work is cut off at a stop's deadline and the rest counted",
     ["robustness_stop_during_work"]),
    ("complete frames before a protocol error are echoed", ["robustness_flush_before_error"]),
    ("a partial frame costs its size, once", ["robustness_partial_frame_memory", "session_test"]),
    ("--idle-timeout drops a raw-mode trickler", ["robustness_raw_idle_timeout"]),
    ("ports, ranges, NaN and overflow refused in one line, in both tools",
     ["engine_cli_test", "loadgen_cli_test", "address_test", "loadgen_unit_test"]),
    ("rates that cannot be paced are refused; the time limit always holds",
     ["loadgen_cli_test", "loadgen_limits_test"]),
    ("buffers sized to need; descriptors and memory checked before a run; out of memory is one line",
     ["loadgen_limits_test"]),
    ("loss, duplicates and reordering counted exactly through a user-space impairment relay",
     ["loadgen_impair_test"]),
    ("a busy unix path is probed without blocking; only the server's own socket file is removed; "
     "the stats file is checked at start; peer text is escaped; stray arguments are refused",
     ["engine_cli_test", "address_test"]),
    ("the spawn-failure flood runs even from a folder `nobody` cannot read", ["robustness_flood_test"]),
    ("a client that connects as the stop arrives is closed unanswered, never served",
     ["accept_after_stop_test", "robustness_sigterm_test"]),
    ("a pool's accept lock survives a killed holder and a signalled waiter; stop under load with the lock",
     ["robustness_signals_test", "robustness_sigterm_test"]),
    ("work handed to reactor-pool's workers keeps each connection's order, is not idle, and drains at a stop",
     ["engine_reactor_pool_test", "session_test"]),
    ("short sends through small socket buffers lose no byte, where no libc shim can see the I/O (io_uring) too",
     ["robustness_short_send_test"]),
    ("an engine whose probe fails (io_uring under a seccomp policy) is refused in one line, not started",
     ["engine_unavailable_test"]),
]


def junit_outcomes(path):
    """{ctest name: "passed" | "failed" | "skipped"} from ctest --output-junit."""
    outcomes = {}
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        status = case.get("status", "")
        if case.find("failure") is not None or case.find("error") is not None or status == "fail":
            outcomes[case.get("name")] = "failed"
        elif case.find("skipped") is not None or status in ("notrun", "disabled"):
            outcomes[case.get("name")] = "skipped"
        else:
            outcomes[case.get("name")] = "passed"
    return outcomes


def regression_classes(outcomes):
    rows = []
    for description, tests in REGRESSION_CLASSES:
        results = {test: outcomes.get(test, "not run") for test in tests}
        rows.append({"class": description, "tests": results,
                     "guarded": all(result == "passed" for result in results.values())})
    return rows


def git_commit():
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return commit, bool(dirty)
    except (OSError, subprocess.SubprocessError):
        return "unknown", None


def test_of(result):
    """The test a case belongs to: its "test" key, else the case name minus "_<engine>"."""
    if isinstance(result.get("test"), str):
        return result["test"]
    case = result["case"]
    suffix = "_" + "".join(c if c.isalnum() else "_" for c in str(result.get("engine", "")))
    return case[: -len(suffix)] if case.endswith(suffix) else case


def summarise(result):
    figures = {}
    for name, keys in FIGURES.items():
        for key in keys:
            value = result.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                figures[name] = value
                break
    return figures


def load_cases(directory):
    cases, problems = [], []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            with open(path, encoding="utf-8") as file:
                result = json.load(file)
        except (OSError, ValueError) as error:
            problems.append(f"{path.name}: unreadable ({error})")
            continue
        if not isinstance(result, dict) or "case" not in result or "engine" not in result:
            problems.append(f"{path.name}: no \"case\" and \"engine\"")
            continue
        if f"{result['case']}.json" != path.name:
            problems.append(f"{path.name}: holds case {result['case']!r}")
        cases.append(result)
    return cases, problems


def check(summary):
    violations = []
    for row in summary:
        for name in MUST_BE_ZERO:
            if row["figures"].get(name, 0) != 0:
                violations.append(f"{row['case']}: {name} = {row['figures'][name]}")
        lost = row["figures"].get("bytes_lost", 0)
        if lost != 0:
            violations.append(f"{row['case']}: bytes_lost = {lost}")
    return violations


def merge(directory, junit=None):
    cases, problems = load_cases(directory)
    summary = [{"case": c["case"], "test": test_of(c), "engine": c["engine"], "figures": summarise(c)}
               for c in cases]
    summary.sort(key=lambda row: (row["test"], row["engine"]))
    commit, dirty = git_commit()
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": host_context(),
        "git_commit": commit,
        "git_dirty": dirty,
        "source_dir": str(Path(directory).resolve()),
        "case_count": len(cases),
        "summary": summary,
        "checks": {"must_be_zero": MUST_BE_ZERO + ["bytes_lost"],
                   "violations": check(summary),
                   "unreadable_files": problems},
        "cases": sorted(cases, key=lambda c: c["case"]),
        **({"regression_classes": regression_classes(junit_outcomes(junit))} if junit else {}),
    }


def format_value(value):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def markdown(merged):
    lines = ["| " + " | ".join(title for _, title in MARKDOWN_COLUMNS) + " |",
             "|" + "|".join("---" for _ in MARKDOWN_COLUMNS) + "|"]
    for row in merged["summary"]:
        cells = []
        for key, _ in MARKDOWN_COLUMNS:
            cells.append(format_value(row[key] if key in ("test", "engine") else row["figures"].get(key)))
        lines.append("| " + " | ".join(cells) + " |")
    meta = merged["machine"]
    lines.append("")
    lines.append(f"{merged['case_count']} cases, {merged['date_utc']}, commit {merged['git_commit'][:12]}"
                 f"{' (dirty)' if merged['git_dirty'] else ''}, {meta['num_cpus']} × {meta['cpu_model']}, "
                 f"{meta['kernel']}. Violations of must-be-zero figures: "
                 f"{len(merged['checks']['violations']) or 'none'}.")
    if merged.get("regression_classes"):
        lines += ["", "| class of defect | regression tests | guarded in this run |", "|---|---|---|"]
        for row in merged["regression_classes"]:
            tests = ", ".join(f"`{test}` ({result})" for test, result in row["tests"].items())
            lines.append(f"| {row['class']} | {tests} | {'yes' if row['guarded'] else 'NO'} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", help="the directory of <case>.json files (ECHOLAB_ROBUSTNESS_OUT)")
    parser.add_argument("--out", help="write the merged JSON here (e.g. results/robustness.json)")
    parser.add_argument("--markdown", action="store_true", help="print the README table on stdout")
    parser.add_argument("--check", action="store_true", help="exit 1 if a must-be-zero figure is not")
    parser.add_argument("--junit", metavar="FILE", help="ctest --output-junit FILE of the same run")
    args = parser.parse_args(argv)
    if not Path(args.directory).is_dir():
        print(f"collect.py: {args.directory} is not a directory (run the robustness tests first)",
              file=sys.stderr)
        return 2
    try:
        merged = merge(args.directory, args.junit)
    except (OSError, ElementTree.ParseError) as error:
        print(f"collect.py: cannot read {args.junit}: {error}", file=sys.stderr)
        return 2
    if merged["case_count"] == 0:
        print(f"collect.py: no <case>.json in {args.directory}", file=sys.stderr)
        return 2
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".tmp")
        tmp.write_text(json.dumps(merged, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        tmp.replace(out)  # never a half-written result file
        print(f"collect.py: {merged['case_count']} cases -> {out}", file=sys.stderr)
    if args.markdown:
        print(markdown(merged))
    for problem in merged["checks"]["unreadable_files"]:
        print(f"collect.py: warning: {problem}", file=sys.stderr)
    for violation in merged["checks"]["violations"]:
        print(f"collect.py: must be zero: {violation}", file=sys.stderr)
    unguarded = [row["class"] for row in merged.get("regression_classes", []) if not row["guarded"]]
    for description in unguarded:
        print(f"collect.py: not guarded in this run: {description}", file=sys.stderr)
    return 1 if args.check and (merged["checks"]["violations"] or unguarded) else 0


if __name__ == "__main__":
    sys.exit(main())
