"""The three faces of a comparison: a markdown table for a pull request, a console table,
and JSON (results/schema/compare-result.schema.json)."""
import os

from . import stats
from .judge import VERDICT_ORDER

HEADLINE_METRICS = ("throughput", "p99", "instructions_per_msg", "cpu_time")  # shown even when they pass


def fmt_value(value):
    if value is None:
        return "—"
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}".replace(",", " ")
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1 or size == 0:
        return f"{value:.2f}"
    return f"{value:.3g}"


def fmt_change(metric):
    change = metric["change"]
    if change is None:
        return "—"
    if metric["change_kind"] == "difference":
        return f"{change:+.3g}"
    return f"{change * 100:+.1f}%"


def fmt_fraction(value, kind="ratio"):
    if value is None:
        return "—"
    return f"{value:.3g}" if kind == "difference" else f"{value * 100:.1f}%"


def fmt_p(p):
    return "—" if p is None else (f"{p:.2g}" if p >= 0.0001 else "<0.0001")


def describe_side(info):
    name = info.get("run_id") or os.path.basename(str(info.get("source", "")).rstrip("/")) or "?"
    if info.get("side"):
        name += f":{info['side']}"
    if info.get("server_args"):
        name += " [" + " ".join(info["server_args"]) + "]"
    return name


def _label(metric):
    return metric["title"] + (f" ({metric['unit']})" if metric["unit"] else "")


def rows(result, everything=False):
    """(verdict rank, cell, metric or None) for the table, regressions first."""
    out = []
    for cell in result["cells"]:
        if cell["status"] == "void":
            out.append((VERDICT_ORDER.index("void"), cell, None))
            continue
        for metric in cell["metrics"]:
            matters = (metric["verdict"] != "pass" and (metric["gate"] or metric["verdict"] == "regression")) \
                or metric["metric"] in HEADLINE_METRICS
            if everything or matters:
                out.append((VERDICT_ORDER.index(metric["verdict"]), cell, metric))
    out.sort(key=lambda row: row[0])  # stable: spec order within a verdict
    return out


def _verdict_text(metric, markdown):
    verdict = metric["verdict"]
    if not metric["gate"]:
        verdict += " (info)"
    if markdown and metric["verdict"] == "regression" and metric["gate"]:
        verdict = f"**{verdict}**"
    return verdict


def markdown(result):
    has_aa = result.get("aa") is not None
    lines = [result["summary"], ""]
    header = ["cell", "metric", "baseline", "candidate", "change", "p", "verdict"]
    align = [":--", ":--", "--:", "--:", "--:", "--:", ":--"]
    if has_aa:
        header[-1:-1] = ["A/A noise", "detectable"]
        align[-1:-1] = ["--:", "--:"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(align) + "|")
    notes, grouped = [], {}  # grouped: note -> the cells and metrics it applies to
    for _, cell, metric in rows(result):
        if metric is None:
            blanks = ["—"] * (len(header) - 3)
            lines.append(f"| {cell['id']} | " + " | ".join(["—"] + blanks) + " | void |")
            notes.append(f"{cell['id']}: void: " + "; ".join(cell["void_reasons"]))
            continue
        row = [cell["id"], _label(metric), fmt_value(metric["baseline"]), fmt_value(metric["candidate"]),
               fmt_change(metric), fmt_p(metric["p_value"])]
        if has_aa:
            aa = metric.get("aa") or {}
            row += [fmt_change({"change": aa.get("change"), "change_kind": metric["change_kind"]}),
                    fmt_fraction(metric["detectable_change"], metric["change_kind"])]
        row.append(_verdict_text(metric, True))
        lines.append("| " + " | ".join(row) + " |")
        if metric["note"] and metric["verdict"] != "pass":
            grouped.setdefault(metric["note"], []).append(f"{cell['id']} {metric['metric']}")
    lines.append("")
    settings = result["settings"]
    lines.append(f"Baseline {describe_side(result['baseline'])}, candidate {describe_side(result['candidate'])}"
                 + (f", A/A {describe_side(result['aa'])}" if has_aa else "")
                 + f"; α = {settings['alpha']:g}, {settings['bootstrap_resamples']} bootstrap resamples. "
                 "A regression needs a change beyond the threshold, a Mann-Whitney U test below α and a "
                 "bootstrap interval of the ratio of medians that excludes no change.")
    notes += [f"{note}: {', '.join(where)}" for note, where in grouped.items()]
    for note in notes + result["notes"]:
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


def console(result):
    table = [["cell", "metric", "baseline", "candidate", "change", "p", "interval", "verdict", "note"]]
    for _, cell, metric in rows(result, everything=True):
        if metric is None:
            table.append([cell["id"], "—", "", "", "", "", "", "void", "; ".join(cell["void_reasons"])])
            continue
        ci = metric["ci"]
        interval = "—" if ci is None else (
            f"[{ci[0]:+.3g}, {ci[1]:+.3g}]" if metric["change_kind"] == "difference"
            else f"[{(ci[0] - 1) * 100:+.1f}%, {(ci[1] - 1) * 100:+.1f}%]")
        table.append([cell["id"], metric["metric"], fmt_value(metric["baseline"]), fmt_value(metric["candidate"]),
                      fmt_change(metric), fmt_p(metric["p_value"]), interval, _verdict_text(metric, False),
                      metric["note"] if metric["verdict"] != "pass" else ""])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    out = [result["summary"].replace("**", "")]
    for row in table:
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])) + "  " + row[-1])
    out.extend(result["notes"])
    return "\n".join(line.rstrip() for line in out) + "\n"


def summary(verdict, cells, settings):
    counted = [c for c in cells if c["status"] == "compared"]
    void = [c for c in cells if c["status"] == "void"]
    if verdict == "regression":
        found = [(c["id"], m) for c in cells for m in c["metrics"] if m["gate"] and m["verdict"] == "regression"]
        where = sorted({cell for cell, _ in found})
        what = ", ".join(f"{cell} {m['metric']} {fmt_change(m)}" for cell, m in found[:4])
        more = f" and {len(found) - 4} more" if len(found) > 4 else ""
        return (f"**echolab-compare: regression**: {len(found)} regression{'s' if len(found) > 1 else ''} in "
                f"{len(where)} of {len(cells)} cells "
                f"({what}{more})")
    if verdict == "inconclusive":
        return "**echolab-compare: inconclusive**: " + inconclusive_reason(cells, settings)
    return (f"**echolab-compare: no regression** in {len(counted)} cells "
            f"({len(void)} void)" if void else f"**echolab-compare: no regression** in {len(counted)} cells")


def inconclusive_reason(cells, settings):
    """One line: which cells were void and the smallest change this run could have seen."""
    parts = []
    void = [c["id"] for c in cells if c["status"] == "void"]
    if void:
        parts.append(f"{len(void)} void cell{'s' if len(void) > 1 else ''} ({', '.join(void[:3])}"
                     f"{', …' if len(void) > 3 else ''})")
    worst = {}  # metric -> (largest detectable change or None for "none", cell id, metric)
    for cell in cells:
        for metric in cell["metrics"]:
            if not metric["gate"] or metric["verdict"] != "inconclusive":
                continue
            value, current = metric["detectable_change"], worst.get(metric["metric"])
            if current is None or (current[0] is not None and (value is None or value > current[0])):
                worst[metric["metric"]] = (value, cell["id"], metric)
    if worst and all(value is None for value, _, _ in worst.values()):
        sizes = sorted({(m["n_baseline"], m["n_candidate"], m["smallest_possible_p"]) for _, _, m in worst.values()})
        n_base, n_cand, smallest = sizes[0]
        parts.append(f"too few repetitions: with {n_base} vs {n_cand} the U test cannot reach p < "
                     f"{settings.alpha:g} (smallest possible p = {smallest:.3g}); run at least "
                     f"{stats.repetitions_needed(settings.alpha)} a side")
    elif worst:
        shown = []
        for name, (value, cell_id, metric) in worst.items():
            if value is None:
                shown.append(f"{name} none (too few repetitions, {cell_id})")
            else:
                shown.append(f"{name} {fmt_fraction(value, metric['change_kind'])} ({cell_id})")
        parts.append("noise too large for the thresholds; smallest change this run could have detected: "
                     + ", ".join(shown))
    return "; ".join(parts) if parts else "nothing to judge"
