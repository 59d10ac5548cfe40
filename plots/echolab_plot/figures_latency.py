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


def latency_vs_rate(results):
    candidates = results.measured(lambda c: not c.is_reference and not c.is_datagram and c.get("mode") == "open"
                                  and c.get("work") in (None, "none"))
    cells = results_mod.dominant(candidates)
    lines = results_mod.by_engine(cells, "rate")
    if not lines:
        raise NoData("no open-mode stream cells without service work")
    figure, axes = style.new_figure(panels=3, height_in=4.3)
    rates = sorted({c.get("rate") for c in cells if c.get("rate")})
    panels = [("p50_us", "median (p50) latency, µs"), ("p99_us", "p99 latency, µs")]
    for ax, (metric, ylabel) in zip(axes, panels):
        draw.engine_lines(ax, lines, metric, mark_invalid=True)
        style.format_axis(ax, "offered rate, msgs/s (log scale)", ylabel + " (log scale)", log_x=True, log_y=True,
                          x_ticks=rates)
    throughput_ax = axes[2]
    draw.engine_lines(throughput_ax, lines, "msgs_per_s", mark_invalid=True)
    draw.offered_diagonal(throughput_ax, rates)
    # Log–log, so that 'achieved = offered' is the straight diagonal it is.
    style.format_axis(throughput_ax, "offered rate, msgs/s (log scale)",
                      "achieved, msgs/s (log scale)", log_x=True, log_y=True, x_ticks=rates)
    connections = cells[0].get("connections")
    style.finish(figure, "Latency vs offered rate: where each engine saturates", results, legend_axes=list(axes),
                 subtitle=f"open loop, {connections} connections, {results_mod.describe(cells[0])}",
                 note="open loop, corrected latency; median of the repetitions, error bars span min–max")
    invalid = [c.label for c in cells if c.invalid_repetitions()]
    caption = ("Messages leave on a fixed schedule whatever the server does; latency counts from the intended "
               "send time, so a saturated server shows as a steep rise (the knee) instead of a lower rate."
               + (f" Invalid repetitions (circled): {', '.join(invalid)} — see the table." if invalid else ""))
    return figure, caption
