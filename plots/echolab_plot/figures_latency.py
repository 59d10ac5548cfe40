"""How long an echo takes: the full percentile spectrum at one load, and p50/p99 as the
offered rate grows (where each engine's knee is)."""
from matplotlib import ticker

from . import draw, results as results_mod, style
from .figure import NoData

# Percentiles the C++ summaries carry, as (fraction, summary key, label): used for the
# x ticks and when a cell has no histogram to draw the full spectrum from.
SUMMARY_PERCENTILES = [(0.5, "p50_us", "50%"), (0.9, "p90_us", "90%"), (0.99, "p99_us", "99%"),
                       (0.999, "p99_9_us", "99.9%"), (0.9999, "p99_99_us", "99.99%")]
NINES_TICKS = [(1, "0%")] + [(1 / (1 - f), label) for f, _, label in SUMMARY_PERCENTILES] + \
    [(1e5, "99.999%"), (1e6, "99.9999%")]


def _nines(fraction):
    """The spectrum's x coordinate: 1/(1-p), so each added nine is one decade."""
    return 1.0 / (1.0 - fraction)


def _closed_stream_cells(results):
    candidates = results.measured(lambda c: not c.is_reference and not c.is_datagram and c.get("mode") == "closed"
                                  and c.get("work") in (None, "none"))
    return results_mod.dominant(candidates)


def _busiest_load(cells):
    """The connection count measured for the most engines (ties: the most connections, the
    more telling load) and its cells."""
    engines_at = {}
    for condition in cells:
        engines_at.setdefault(condition.get("connections"), set()).add(condition.engine)
    connections = max(engines_at, key=lambda n: (len(engines_at[n]), n))
    return connections, [c for c in cells if c.get("connections") == connections]


def _spectrum_points(condition):
    """[(x, µs)] from the merged corrected histogram, or from the summary percentiles (medians
    across repetitions) when the histograms are missing. Second value: True if exact."""
    histogram = condition.merged_histogram("corrected")
    if histogram is not None and histogram.count > 0:
        rows = [(p, v) for p, v in histogram.percentile_spectrum() if p < 100.0]
        return [(_nines(p / 100.0), v / 1000.0) for p, v in rows], histogram.count
    points = [(_nines(f), condition.median(key)) for f, key, _ in SUMMARY_PERCENTILES]
    return [(x, v) for x, v in points if v is not None], None


def latency_spectrum(results):
    cells = _closed_stream_cells(results)
    if not cells:
        raise NoData("no closed-mode stream cells without service work")
    connections, chosen = _busiest_load(cells)
    figure, (ax,) = style.new_figure(height_in=5.0)
    samples, approximated, largest_x = {}, [], 1.0
    for engine in style.ordered(c.engine for c in chosen):
        condition = next(c for c in chosen if c.engine == engine)
        points, count = _spectrum_points(condition)
        if not points:
            continue
        kwargs = style.line_kwargs(engine)
        kwargs["markevery"] = 0.07  # evenly spaced along the line (the ticks crowd in the tail)
        ax.plot([x for x, _ in points], [v for _, v in points], **kwargs)
        largest_x = max(largest_x, points[-1][0])
        if count is None:
            approximated.append(engine)
        else:
            samples[engine] = count
    if not samples and not approximated:
        raise NoData(f"the closed-mode cells at {connections} connections have neither histograms nor percentiles")
    if connections == 1:
        for reference in draw.matching_references(results, chosen[0].get("transport")):
            points = [(_nines(f), reference.median(key)) for f, key, _ in SUMMARY_PERCENTILES]
            points = [(x, v) for x, v in points if v is not None]
            if points:
                ax.plot([x for x, _ in points], [v for _, v in points], label=draw.reference_label(reference),
                        **style.REFERENCE_STYLE)
    style.format_axis(ax, "percentile (log scale of 1/(1−p): one decade per nine)",
                      "latency, µs (log scale)", log_y=True)
    ax.set_xscale("log")
    ticks = [(x, label) for x, label in NINES_TICKS if x <= largest_x * 1.5]
    ax.xaxis.set_major_locator(ticker.FixedLocator([x for x, _ in ticks]))
    ax.xaxis.set_major_formatter(ticker.FixedFormatter([label for _, label in ticks]))
    ax.xaxis.set_minor_locator(ticker.NullLocator())
    title = f"Latency percentile spectrum at {connections} connection{'s' if connections != 1 else ''}"
    note = "corrected latency (from the intended send time); histograms merged exactly across repetitions"
    style.finish(figure, title, results, legend_axes=ax, note=note,
                 subtitle=f"closed loop, {results_mod.describe(chosen[0])}")
    caption = (f"Chosen load: {connections} connections, the closed-mode load measured for the most engines. "
               + ", ".join(f"{e}: {n:,} samples" for e, n in samples.items()) + "."
               + (f" Drawn from summary percentiles only (no histogram): {', '.join(approximated)}."
                  if approximated else ""))
    return figure, caption


# The rows of the latency-vs-rate figure: three percentiles on log y, then what was achieved.
RATE_ROWS = [("p50_us", "p50 latency, µs"), ("p99_us", "p99 latency, µs"), ("p99_9_us", "p99.9 latency, µs")]


def _percent(value):
    return f"{value * 100:g}%"


def latency_vs_rate(results):
    """Latency against the offered rate, one row per percentile and a last row of what was
    achieved. Where a capacity sweep measured the engines, a left column puts x at the
    fraction of each engine's own closed-loop capacity, so every engine's knee lines up
    near 100% whatever its speed; the right column keeps absolute msgs/s."""
    candidates = results.measured(lambda c: not c.is_reference and not c.is_datagram and c.get("mode") == "open"
                                  and c.get("work") in (None, "none"))
    cells = results_mod.dominant(candidates)
    lines = results_mod.by_engine(cells, "rate")
    if not lines:
        raise NoData("no open-mode stream cells without service work")
    by_fraction = results_mod.by_engine(cells, lambda c: c.capacity_fraction)
    columns = ([("fraction", by_fraction)] if by_fraction else []) + [("absolute", lines)]
    figure, axes = style.new_figure(panels=len(columns), rows=len(RATE_ROWS) + 1, height_in=2.5)
    rates = sorted({c.get("rate") for c in cells if c.get("rate")})
    for column, (kind, column_lines) in enumerate(columns):
        grid = axes[column::len(columns)]
        xlabel = ("offered rate, fraction of the engine's closed-loop capacity" if kind == "fraction"
                  else "offered rate, msgs/s")
        for ax, (metric, ylabel) in zip(grid, RATE_ROWS):
            draw.engine_lines(ax, column_lines, metric, mark_invalid="reason")
            style.format_axis(ax, "", ylabel + " (log)", log_y=True)  # x named once, under the column
        achieved_ax = grid[-1]
        if kind == "fraction":
            draw.engine_lines(achieved_ax, column_lines, "capacity_share", mark_invalid="reason")
            draw.offered_diagonal(achieved_ax, sorted({x for points in column_lines.values() for x in points}))
            style.format_axis(achieved_ax, xlabel, "achieved, share\nof capacity (log)", log_y=True)
            achieved_ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: _percent(v)))
            achieved_ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        else:
            draw.engine_lines(achieved_ax, column_lines, "msgs_per_s", mark_invalid="reason")
            draw.offered_diagonal(achieved_ax, rates)
            # Log–log, so that 'achieved = offered' is the straight diagonal it is.
            style.format_axis(achieved_ax, xlabel, "achieved, msgs/s (log)", log_y=True)
        for ax in grid:
            style.sparse_log_x(ax, _percent if kind == "fraction" else None)
            if kind == "fraction":
                ax.axvline(1.0, color="#999999", linestyle=":", linewidth=1.2, zorder=1)
    connections = cells[0].get("connections")
    style.finish(figure, "Latency vs offered rate: where each engine saturates", results, legend_axes=list(axes),
                 subtitle=f"open loop, {connections} connections, {results_mod.describe(cells[0])}",
                 note="open loop, corrected latency; median of the repetitions, error bars span min–max"
                      + ("; dotted line: the closed-loop capacity" if by_fraction else ""))
    invalid = [c.label for c in cells if c.invalid_repetitions()]
    caption = ("Messages leave on a fixed schedule whatever the server does; latency counts from the intended "
               "send time, so a saturated server shows as a steep rise (the knee) instead of a lower rate."
               + (" Left: the rate as a fraction of each engine's closed-loop capacity at the same connections, "
                  "measured first in the same run (a capacity sweep); right: in msgs/s." if by_fraction else "")
               + (f" Invalid repetitions (ringed, one ring per reason): {', '.join(invalid)} — see the table."
                  if invalid else ""))
    return figure, caption


def _three_digits(value):
    """17,901 -> '17.9k': a bracket's ends to the precision the search has."""
    return style.human(float(f"{round(value):.3g}"))


def slo_capacity(results):
    """One bar per engine: the highest rate it sustained with the run valid and the latency
    objective met; the error bar spans the bracket the search measured around it."""
    found = results.slo_capacities()
    if not found:
        raise NoData("no capacity search at a latency objective (a spec's \"slo\" with a capacity sweep)")
    # One objective and load per figure: the one measured for the most engines.
    tally = {}
    for entry in found:
        tally.setdefault((entry.connections, entry.percentile, entry.max_us), []).append(entry)
    chosen = max(tally.values(), key=len)
    chosen = sorted(chosen, key=lambda e: (style.engine_sort_key(e.engine), e.side or ""))
    figure, (ax,) = style.new_figure(height_in=5.0)
    positions = range(len(chosen))
    highest = 1.0  # what the y axis must show: bars, brackets, arrows, labels
    for position, entry in zip(positions, chosen):
        label = entry.engine + (f" ({entry.side})" if entry.side else "")
        low, high = entry.interval
        ax.bar([position], [entry.rate], width=0.6, **style.bar_kwargs(entry.engine, label))
        top = high if high is not None else entry.rate
        ax.errorbar([position], [entry.rate], yerr=[[entry.rate - low], [top - entry.rate]], fmt="none",
                    ecolor="black", capsize=5, elinewidth=1.2)
        if high is None:  # passed at every rate tried: the capacity is at least this
            ax.annotate("", xy=(position, entry.rate * 1.25), xytext=(position, entry.rate),
                        arrowprops={"arrowstyle": "->", "color": "black"})
        text = (f"≥ {_three_digits(low)}" if high is None else f"< {_three_digits(high)}" if not low
                else f"{_three_digits(low)}–{_three_digits(high)}")
        # Upright, a dozen engines' brackets overlap each other.
        ax.text(position, max(top, entry.rate, 1) * 1.04, text, ha="center", va="bottom", fontsize=8,
                rotation=90)
        highest = max(highest, top * (1.25 if high is None else 1.0), entry.closed_loop_rate or 0)
        if entry.closed_loop_rate:
            ax.plot([position], [entry.closed_loop_rate], marker="_", markersize=28, markeredgewidth=2,
                    color="#555555", linestyle="none", label="closed-loop capacity (same connections)", zorder=4)
    ax.set_xticks(list(positions))
    ax.set_xticklabels([e.engine + (f" ({e.side})" if e.side else "") for e in chosen], rotation=20, ha="right")
    ax.set_xlim(-0.6, len(chosen) - 0.4)
    style.format_axis(ax, "", f"msgs/s at {chosen[0].objective}")
    ax.set_ylim(0, highest * 1.6)  # room for the upright labels
    first = chosen[0]
    style.finish(figure, f"Capacity at a latency objective: {first.objective}", results, legend_axes=ax,
                 subtitle=f"open loop, {first.connections} connections; highest offered rate with the run valid "
                          "and the objective met",
                 note="bar: median over repetitions of the highest passing rate; error bar: from the lowest "
                      "passing to the highest failing rate measured")
    searches = "; ".join(f"{e.engine}: {e.steps} search runs, stopped by {'/'.join(sorted(set(e.stopped)))}"
                         for e in chosen)
    caption = ("Each engine's search bisects the open-loop rate (each step a real run), starting from the bracket "
               "its capacity sweep found; the bar is the highest rate at which the run was valid and "
               f"{first.objective}. The error bar spans the lowest passing to the highest failing rate over the "
               f"repetitions: each repetition's capacity at the objective lies within it. {searches}.")
    return figure, caption
