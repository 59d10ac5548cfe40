"""Drawing blocks shared by the figures: engine lines with their spread across repetitions,
grouped bars, reference points. Each figure module only chooses the cells and the axes."""
import re

from . import style

INVALID_LABEL = "circled: a repetition was invalid (see the report)"

# The load generator's reasons for voiding a run (loadgen/result.cc, assess_validity), each
# with a short name and a ring of its own, so a figure says why a point is invalid.
INVALID_KINDS = [(re.compile(r"used \d+% of a core"), "generator CPU > --max-cpu", "o"),
                 (re.compile(r"send lag"), "send lag > --max-send-lag", "s"),
                 (re.compile(r"generator sent"), "sent < 95% of asked", "D"),
                 (re.compile(r"queue overflowed"), "queue overflowed", "^"),
                 (re.compile(r"time limit|interrupted"), "run cut short", "v")]
OTHER_INVALID = ("other (see the report)", "h")


def invalid_kinds(reasons):
    """(short name, ring marker) of each kind among `reasons`, once, in INVALID_KINDS order."""
    kinds = [(label, marker) for pattern, label, marker in INVALID_KINDS
             if any(pattern.search(reason) for reason in reasons)]
    if any(not any(pattern.search(reason) for pattern, _, _ in INVALID_KINDS) for reason in reasons):
        kinds.append(OTHER_INVALID)
    return kinds


def engine_lines(ax, lines, metric, scale=1.0, mark_invalid=False):
    """One line per engine through the medians of `metric`, with min–max error bars.

    `lines` is {engine: {x: Condition}}. `mark_invalid`: True circles the points with an
    invalid repetition; "reason" rings them with one marker per reason (invalid_kinds) and
    labels the rings "invalid: <reason>". Returns the engines actually drawn."""
    drawn = []
    for engine in style.ordered(lines):
        points = sorted((x, c) for x, c in lines[engine].items() if c.median(metric) is not None)
        if not points:
            continue
        xs = [x for x, _ in points]
        medians = [c.median(metric) * scale for _, c in points]
        spreads = [tuple(v * scale for v in c.spread(metric)) for _, c in points]
        ax.errorbar(xs, medians, yerr=style.spread_errors(medians, spreads), capsize=3, elinewidth=1,
                    **style.line_kwargs(engine))
        if mark_invalid == "reason":
            _rings_by_reason(ax, [(x, m, c) for (x, c), m in zip(points, medians) if c.invalid_repetitions()])
        elif mark_invalid:
            bad = [(x, m) for (x, c), m in zip(points, medians) if c.invalid_repetitions()]
            if bad:
                ax.plot([x for x, _ in bad], [m for _, m in bad], label=INVALID_LABEL, zorder=5,
                        **style.INVALID_STYLE)
        drawn.append(engine)
    return drawn


def _rings_by_reason(ax, bad):
    """A ring per reason kind around each invalid point [(x, y, Condition)]; rings of
    different kinds at one point nest, as their markers differ in shape and size."""
    by_kind = {}
    for x, y, condition in bad:
        for kind in invalid_kinds(condition.invalid_reasons()):
            by_kind.setdefault(kind, []).append((x, y))
    for (label, marker), points in by_kind.items():
        ring = dict(style.INVALID_STYLE, marker=marker)
        ax.plot([x for x, _ in points], [y for _, y in points], label=f"invalid: {label}", zorder=5, **ring)


def grouped_bars(ax, groups, series, metric, scale=1.0, group_label=str):
    """Bars for each group (x position) and series (bar within the group), with min–max error
    bars. `series` is [(label, engine for the style, {group: Condition})]. Returns the number of
    bars drawn."""
    # Bars no wider than with ~4 per group: one engine alone must not look like a wall.
    width = min(0.8 / max(len(series), 1), 0.2)
    first = -width * len(series) / 2
    drawn = 0
    for slot, (label, engine, by_group) in enumerate(series):
        xs, medians, spreads = [], [], []
        for position, group in enumerate(groups):
            condition = by_group.get(group)
            if condition is None or condition.median(metric) is None:
                continue
            xs.append(position + first + width * (slot + 0.5))
            medians.append(condition.median(metric) * scale)
            spreads.append(tuple(v * scale for v in condition.spread(metric)))
        if not xs:
            continue
        ax.bar(xs, medians, width=width * 0.92, **style.bar_kwargs(engine, label))
        ax.errorbar(xs, medians, yerr=style.spread_errors(medians, spreads), fmt="none", ecolor="black",
                    capsize=3, elinewidth=1)
        drawn += len(xs)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([group_label(g) for g in groups])
    ax.set_xlim(-0.6, len(groups) - 0.4)
    return drawn


def matching_references(results, transport):
    """Reference cells measured like 'closed mode, 1 connection' over `transport`."""
    return [c for c in results.references()
            if c.get("mode") == "closed" and c.get("connections") == 1 and c.get("transport") == transport]


def reference_label(condition):
    return f"{condition.engine} (reference tool, 1 connection)"


def reference_points(ax, references, x, metric, scale=1.0):
    """A star per reference cell at `x`; returns how many were drawn."""
    drawn = 0
    for condition in references:
        value = condition.median(metric)
        if value is None:
            continue
        ax.plot([x], [value * scale], label=reference_label(condition), zorder=6, **style.REFERENCE_STYLE)
        drawn += 1
    return drawn


def offered_diagonal(ax, rates):
    """The 'achieved = offered' curve, a little past the measured rates on both sides, so it
    shows even when only one rate was measured."""
    if not rates:
        return
    low, high = min(rates) / 1.5, max(rates) * 1.5
    xs = [low * (high / low) ** (i / 40) for i in range(41)]
    ax.plot(xs, xs, color="#999999", linestyle=":", linewidth=1.2, label="achieved = offered", zorder=1)
