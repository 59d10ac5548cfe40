"""The steady signal beside the timings: user-space instructions per message, counted by
valgrind's callgrind over a fixed number of messages (echolab-bench --callgrind writes
callgrind.json into the result set).

Instruction counts hardly move between runs of one build (the spread comes from timers and
the scheduler: how often an idle loop woke up), so a change of a percent is real even when
the machine makes timings drift by 2x. Each side's own spread, measured over its
repetitions, widens the tolerance: a count that varies by 3 % between runs of one build
cannot be judged to 1 %."""
import json
import os
import statistics

from . import judge
from .metrics import BY_NAME

FILE_NAME = "callgrind.json"
METRIC = "instructions_per_msg"


class FormatError(Exception):
    pass


def parse_totals(path):
    """{event name: total} of one callgrind output file. A file may hold several parts (one
    per dump); their totals add up. "totals:" is authoritative; "summary:" (the header's copy,
    written by older versions) is used only when no part has totals."""
    events, totals, summary = None, {}, {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                key, sep, rest = line.partition(":")
                if not sep or key not in ("events", "totals", "summary"):
                    continue
                fields = rest.split()
                if key == "events":
                    events = fields
                    continue
                if events is None:
                    raise FormatError(f"{path}: {key}: line before the events: line")
                try:
                    values = [int(v) for v in fields]
                except ValueError:
                    raise FormatError(f"{path}: {key}: line is not a list of integers") from None
                target = totals if key == "totals" else summary
                for name, value in zip(events, values):
                    target[name] = target.get(name, 0) + value
    except OSError as error:
        raise FormatError(f"cannot read {path}: {error.strerror}") from None
    if events is None:
        raise FormatError(f"{path} is not a callgrind output file (no events: line)")
    found = totals or summary
    if not found:
        raise FormatError(f"{path}: no totals: or summary: line (was the process killed before it wrote them?)")
    return found


def instructions(paths):
    """Total Ir over the output files of one run (one file per process under --trace-children)."""
    total = 0
    for path in paths:
        counts = parse_totals(path)
        if "Ir" not in counts:
            raise FormatError(f"{path}: no Ir event (collected: {', '.join(counts)})")
        total += counts["Ir"]
    return total


def load_runs(directory, default_side=""):
    """{side: {cell label: [instructions per message, one per good repetition]}} and the
    failed runs' reasons, from a result set's callgrind.json; None when it has none."""
    path = os.path.join(directory, FILE_NAME)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            document = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FormatError(f"cannot read {path}: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("runs"), list):
        raise FormatError(f"{path} is not an echolab-bench callgrind file (no 'runs' list)")
    values, failed = {}, {}
    for run in document["runs"]:
        side, label = run.get("side") or default_side, run.get("id")
        if run.get("status") == "ok" and isinstance(run.get("instructions_per_msg"), (int, float)):
            values.setdefault(side, {}).setdefault(label, []).append(float(run["instructions_per_msg"]))
        else:
            failed.setdefault(side, {}).setdefault(label, []).append(run.get("reason") or "no reason given")
    return {"values": values, "failed": failed, "tolerance": document.get("tolerance")}


def spread(values):
    """(max - min) / median: how far repetitions of one build disagree."""
    if len(values) < 2:
        return 0.0
    middle = statistics.median(values)
    return (max(values) - min(values)) / middle if middle > 0 else 0.0


def judge_counts(base, cand, tolerance, settings):
    """The metric row for one cell: a regression when the candidate's median is above the
    baseline's by more than max(tolerance, the larger side's spread) and every candidate
    repetition is above every baseline one."""
    metric = BY_NAME[METRIC]
    widest = max(spread(base), spread(cand))
    threshold = max(tolerance, widest)
    out = judge.judge_metric(metric, threshold, base, cand, settings)
    out["spread"] = widest
    if widest > tolerance:
        out["note"] = (out["note"] + "; " if out["note"] else "") + \
            f"tolerance widened from {tolerance * 100:.2g}% to the observed spread {widest * 100:.2g}%"
    return out


def compare_cells(base_runs, cand_runs, base_side, cand_side, settings, gate):
    """Result cells (as judge.compare_cell makes them) for every cell with counts on both sides."""
    tolerance = settings.thresholds[METRIC]
    base_values = base_runs["values"].get(base_side, {})
    cand_values = cand_runs["values"].get(cand_side, {})
    labels = list(base_values) + [label for label in cand_values if label not in base_values]
    for failed, role, side in ((base_runs["failed"], "baseline", base_side),
                               (cand_runs["failed"], "candidate", cand_side)):
        labels += [label for label in failed.get(side, {}) if label not in labels]
    cells = []
    for label in labels:
        cell = {"id": f"{label} (callgrind)", "cell": {"callgrind": label}, "status": "compared",
                "void_reasons": [], "repetitions": {"baseline": len(base_values.get(label, [])),
                                                    "candidate": len(cand_values.get(label, []))},
                "metrics": []}
        for failed, role, side in ((base_runs["failed"], "baseline", base_side),
                                   (cand_runs["failed"], "candidate", cand_side)):
            reasons = failed.get(side, {}).get(label)
            if reasons:
                cell["void_reasons"].append(f"{role}: {len(reasons)} callgrind run(s) failed: {reasons[0]}")
        base, cand = base_values.get(label, []), cand_values.get(label, [])
        if not base or not cand:
            cell["void_reasons"].append("counted on one side only")
        if cell["void_reasons"]:
            cell["status"] = "void"
        else:
            judged = judge_counts(base, cand, tolerance, settings)
            judged["gate"], judged["aa"] = gate, None
            cell["metrics"].append(judged)
        cells.append(cell)
    return cells
