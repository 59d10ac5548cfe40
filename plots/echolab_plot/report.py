"""report.html: every figure (PNG inline, SVG linked), the skipped ones with their reason,
and a table of each cell's numbers (medians across repetitions), then the failed cells.

The page is self-contained apart from the image files next to it: no scripts, no external
style sheets, so it opens from a file system, a CI artefact or a mail attachment alike."""
import html
import re

from . import style

STYLE_SHEET = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; margin-top: 0.4em; }
table { border-collapse: collapse; font-size: 0.8em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; }
td.n { text-align: right; font-variant-numeric: tabular-nums; } th { background: #f3f3f3; }
tr.invalid td { background: #fff3e0; } .skipped { color: #8a4b00; } .meta { color: #555; font-size: 0.9em; }
"""


def _rate_text(value):
    return f"{value:,.0f}"


def _microseconds_text(value):
    return f"{value:,.1f}"


# (heading, metric or callable, formatter) per numeric column of the cell table.
NUMBER_COLUMNS = [
    ("msgs/s", "msgs_per_s", _rate_text),
    ("p50 µs", "p50_us", _microseconds_text),
    ("p99 µs", "p99_us", _microseconds_text),
    ("p99.9 µs", "p99_9_us", _microseconds_text),
    ("server CPU µs/msg", "server_cpu_us_per_msg", lambda v: f"{v:,.2f}"),
    ("syscalls/msg", "syscalls_per_msg", lambda v: f"{v:,.2f}"),
    ("peak RSS MiB", "peak_rss_bytes", lambda v: f"{v / 2 ** 20:,.1f}"),
]

# sockperf's unmodified ping-pong client against the same engine (a cell's sockperf_client
# side run), shown only when some cell has it. It runs with --full-rtt: sockperf reports half
# the round trip otherwise, and these columns are to compare with the load generator's
# msgs/s, p50 and p99, which are the whole round trip.
SOCKPERF_CLIENT_COLUMNS = [
    ("sockperf client msgs/s", "sockperf_msgs_per_s", _rate_text),
    ("sockperf client p50 µs", "sockperf_p50_us", _microseconds_text),
    ("sockperf client p99 µs", "sockperf_p99_us", _microseconds_text),
]

# Columns shown only when some cell has them (the multi-worker engines).
SHARE_COLUMNS = [
    ("worker msgs %", "worker_messages_share"),
    ("worker conns %", "worker_connections_share"),
]
# The pools' thundering herd (prefork, prethread): wake-ups that found no connection.
HERD_COLUMN = ("idle wake-ups/accept", "idle_wakeups_per_accept")


def _escape(value):
    return html.escape(str(value), quote=True)


def _figure_html(outcome):
    if outcome.skipped:
        return (f'<h2>{_escape(outcome.title)}</h2>\n<p class="skipped">Not drawn: '
                f"{_escape(outcome.skipped)}.</p>\n")
    png = next((f for f in outcome.files if f.endswith(".png")), None)
    svg = next((f for f in outcome.files if f.endswith(".svg")), None)
    links = " · ".join(f'<a href="{_escape(f)}">{_escape(f.rsplit(".", 1)[1].upper())}</a>' for f in outcome.files)
    image = f'<a href="{_escape(svg or png)}"><img src="{_escape(png or svg)}" alt="{_escape(outcome.title)}"></a>'
    return (f'<h2 id="{_escape(outcome.name)}">{_escape(outcome.title)}</h2>\n<figure>{image}\n'
            f"<figcaption>{_escape(outcome.caption)} ({links})</figcaption></figure>\n")


def _failures_text(condition):
    kinds = condition.errors_by_kind()
    parts = [f"{kind} {n:,.0f}" for kind, n in sorted(kinds.items(), key=lambda item: -item[1])]
    refused = condition.values("connections_refused")
    if refused and max(refused) > 0:
        parts.append(f"server refused {max(refused):,.0f}")
    if condition.failed:
        parts.append(f"{len(condition.failed)} repetition(s) failed")
    parts += [f"sockperf client: {error}" for error in condition.sockperf_client_errors()]
    return ", ".join(parts) or "0"


def _number_columns(conditions):
    """NUMBER_COLUMNS, then the sockperf client's where some cell has them."""
    return NUMBER_COLUMNS + [column for column in SOCKPERF_CLIENT_COLUMNS
                             if any(condition.median(column[1]) is not None for condition in conditions)]


def _median_text(condition, metric, formatter):
    value = condition.median(metric)
    return "–" if value is None else formatter(value)


def _table_order(condition):
    """References last; streams before datagrams; then mode, engine (lecture order), work,
    and the load numerically (r2000 before r15000)."""
    mode_rank = {"closed": 0, "open": 1, "connect": 2}.get(condition.get("mode"), 3)
    work = condition.get("work") or "none"
    return (condition.is_reference, condition.is_datagram, mode_rank, style.engine_sort_key(condition.engine),
            work != "none", work, condition.get("connections") or 0, condition.get("rate") or 0, condition.label)


def _cell_rows(results, columns):
    conditions = sorted(results.conditions, key=_table_order)
    rows = []
    for condition in conditions:
        invalid = condition.invalid_repetitions()
        repetitions = f"{len(condition.metrics)}/{len(condition.metrics) + len(condition.failed)}"
        validity = "" if not invalid else f"{invalid} invalid: " + "; ".join(condition.invalid_reasons())
        cells = [f"<td>{_escape(condition.label)}</td>", f"<td>{_escape(condition.engine)}</td>",
                 f'<td class="n">{repetitions}</td>']
        for _, metric, formatter in columns:
            cells.append(f'<td class="n">{_escape(_median_text(condition, metric, formatter))}</td>')
        cells.append(f"<td>{_escape(_failures_text(condition))}</td><td>{_escape(validity)}</td>")
        row_class = ' class="invalid"' if invalid or condition.failed else ""
        rows.append(f"<tr{row_class}>{''.join(cells)}</tr>")
    return rows


def _share_text(condition, metric):
    low, high = condition.median(metric + "_min_pct"), condition.median(metric + "_max_pct")
    return "–" if low is None or high is None else f"{low:.0f}–{high:.0f}"


def _compact_reasons(reasons):
    """"used 91% of a core", "used 98% of a core" -> "used 91–98% of a core": reasons that
    differ only in their numbers become one, with each number's range."""
    number = re.compile(r"\d+(?:\.\d+)?")
    groups = {}
    for reason in reasons:
        groups.setdefault(number.sub("#", reason), []).append([float(n) for n in number.findall(reason)])
    out = []
    for template, rows in groups.items():
        pieces = template.split("#")
        text = pieces[0]
        for position, piece in enumerate(pieces[1:]):
            low, high = min(r[position] for r in rows), max(r[position] for r in rows)
            text += (f"{low:g}" if low == high else f"{low:g}–{high:g}") + piece
        out.append(text)
    return out


NUMBER_CELL = '<td class="n">'
SLO_HEADINGS = ["engine", "connections", "objective", "msgs/s at the objective", "interval msgs/s",
                "closed-loop msgs/s", "share of closed loop", "also failed at msgs/s", "search runs", "stopped by"]


def _slo_rows(results):
    """The capacity at the latency objective, one row of SLO_HEADINGS' texts per engine and
    objective, engines in registry order."""
    rows = []
    for entry in sorted(results.slo_capacities(), key=lambda e: (e.connections or 0, e.objective,
                                                                 style.engine_sort_key(e.engine), e.side or "")):
        low, high = entry.interval
        interval = (f"≥ {low:,.0f}" if high is None else f"< {high:,.0f}" if not low
                    else f"{low:,.0f} – {high:,.0f}")
        closed = entry.closed_loop_rate
        share = f"{entry.rate / closed:.0%}" if closed else "–"
        rows.append([entry.engine + (f" ({entry.side})" if entry.side else ""), str(entry.connections),
                     entry.objective, f"{entry.rate:,.0f}", interval, "–" if closed is None else f"{closed:,.0f}",
                     share, ", ".join(f"{rate:,.0f}" for rate in sorted(entry.failed_below)) or "–",
                     str(entry.steps), ", ".join(sorted(set(entry.stopped)))])
    return rows


SLO_INTRODUCTION = ("The highest open-loop rate each engine sustained with the run valid and the objective met "
                    "(median over repetitions), found by bisection over the rate, each step a real run. The "
                    "interval runs from the lowest passing to the highest failing rate measured across the "
                    "repetitions: the capacity at the objective lies within it. The closed-loop rate is the "
                    "capacity run that the sweep's rates are fractions of. Rates under the interval that failed the "
                    "objective are listed: a run the machine disturbed, or an engine slower at low load than "
                    "above it; either way the objective is not met at every rate under the capacity.")


def markdown(results):
    """The cell table as markdown (for a README or a pull request): medians across the
    successful repetitions, the workers' shares where the engine spreads work, and why a
    repetition was invalid."""
    conditions = sorted(results.conditions, key=_table_order)
    columns = _number_columns(conditions)
    shares = [c for c in SHARE_COLUMNS if any(cond.median(c[1] + "_max_pct") is not None for cond in conditions)]
    herd = any(cond.median(HERD_COLUMN[1]) is not None for cond in conditions)
    headings = (["cell", "reps ok"] + [h for h, _, _ in columns] + [h for h, _ in shares]
                + ([HERD_COLUMN[0]] if herd else []) + ["validity"])
    lines = ["| " + " | ".join(headings) + " |", "|" + "---|" * len(headings)]
    for condition in conditions:
        invalid = condition.invalid_repetitions()
        values = [f"`{condition.label}`", f"{len(condition.metrics)}/{len(condition.metrics) + len(condition.failed)}"]
        values += [_median_text(condition, metric, formatter) for _, metric, formatter in columns]
        values += [_share_text(condition, metric) for _, metric in shares]
        if herd:
            value = condition.median(HERD_COLUMN[1])
            values.append("–" if value is None else f"{value:.2f}")
        validity = "ok" if not invalid else f"{invalid} invalid: " + "; ".join(
            _compact_reasons(condition.invalid_reasons()))
        if condition.failed or condition.sockperf_client_errors():
            validity += "; " + _failures_text(condition)
        lines.append("| " + " | ".join(v.replace("|", "\\|") for v in values + [validity]) + " |")
    slo_rows = _slo_rows(results)
    if slo_rows:
        lines += ["", "**Capacity at the latency objective.** " + SLO_INTRODUCTION, "",
                  "| " + " | ".join(SLO_HEADINGS) + " |", "|" + "---|" * len(SLO_HEADINGS)]
        lines += ["| " + " | ".join(row) + " |" for row in slo_rows]
    return "\n".join(lines) + "\n"


def render(results, outcomes):
    env = results.environment
    manifest = results.manifest
    columns = _number_columns(results.conditions)
    headings = ["cell", "engine", "reps ok"] + [h for h, _, _ in columns] + ["failures", "validity"]
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>echolab results {_escape(results.run_id)}</title><style>{STYLE_SHEET}</style></head><body>",
        f"<h1>echolab benchmark: {_escape(results.run_id)}</h1>",
        f'<p class="meta">Spec <b>{_escape(manifest.get("spec_name", "?"))}</b>, '
        f'{_escape(manifest.get("repetitions", "?"))} repetitions, '
        f'{_escape(manifest.get("start_utc", "?"))} – {_escape(manifest.get("end_utc", "?"))}; '
        f"{_escape(style.footer_text(results))}; memory {_escape(_gib(env.get('memory_bytes')))}; "
        f'build {_escape(manifest.get("build", "?"))}; CPUs server {_escape(_cpus(manifest, "server"))}, '
        f'load generator {_escape(_cpus(manifest, "client"))}.</p>',
    ]
    parts += [f'<p class="skipped">{_escape(note)}</p>' for note in results.notes]
    drawn = [o for o in outcomes if not o.skipped]
    if drawn:
        parts.append("<p>Figures: " + ", ".join(f'<a href="#{_escape(o.name)}">{_escape(o.title)}</a>'
                                                for o in drawn) + ".</p>")
    parts += [_figure_html(o) for o in outcomes]
    parts.append("<h2>Cells</h2>\n<p>Medians across the successful repetitions; latency is the corrected "
                 "latency (from each message's intended send time). Failures are summed over repetitions."
                 + (" The sockperf client columns are sockperf's own ping-pong client against the same engine, "
                    "started again with --protocol sockperf after the load generator's run; their latency is "
                    "the full round trip (--full-rtt), as the load generator's is. Past one connection it "
                    "takes its sockets in turn, one message in flight in all." if columns != NUMBER_COLUMNS
                    else "") + "</p>")
    parts.append("<table><thead><tr>" + "".join(f"<th>{_escape(h)}</th>" for h in headings)
                 + "</tr></thead><tbody>")
    parts += _cell_rows(results, columns)
    parts.append("</tbody></table>")
    slo_rows = _slo_rows(results)
    if slo_rows:
        parts.append(f'<h2 id="slo-capacity-table">Capacity at the latency objective</h2>\n'
                     f"<p>{_escape(SLO_INTRODUCTION)}</p>")
        parts.append("<table><thead><tr>" + "".join(f"<th>{_escape(h)}</th>" for h in SLO_HEADINGS)
                     + "</tr></thead><tbody>"
                     + "".join("<tr>" + "".join((NUMBER_CELL if 3 <= i <= 7 else "<td>") + f"{_escape(v)}</td>"
                                                for i, v in enumerate(row)) + "</tr>" for row in slo_rows)
                     + "</tbody></table>")
    parts.append("<h2>Failed cells</h2>")
    if results.failed:
        parts.append("<table><thead><tr><th>cell</th><th>reason</th></tr></thead><tbody>"
                     + "".join(f"<tr><td>{_escape(i)}</td><td>{_escape(r)}</td></tr>" for i, r in results.failed)
                     + "</tbody></table>")
    else:
        parts.append("<p>None: every repetition of every cell ran.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _gib(value):
    return f"{value / 2 ** 30:.1f} GiB" if isinstance(value, (int, float)) and value > 0 else "?"


def _cpus(manifest, role):
    return (manifest.get("cpus") or {}).get(role) or "any"
