"""Throughput and p99 vs connections for every engine, with the failures marked where they
happened: a cell that did not run (the runner's reason), or one that ran while the client
counted errors (connections refused or reset, connects or echoes that timed out)."""
from . import draw, results as results_mod, style
from .figure import NoData

# Plain words in the figure (the X is the marker itself): not every font has a ✕ glyph.
FAILED_LABEL = "did not run (the reason beside it)"
ERRORS_LABEL = "the client counted errors (how many, and the main kind, beside it)"
MEMORY_METRIC = "rss_added_per_connection_bytes"
FAILURE_STYLE = {"marker": "X", "markersize": 11, "color": "#CC0000", "linestyle": "none", "zorder": 7}


def _sweep(results):
    """Stream cells without service work of the most common load (mode, rate and the other
    comparable keys), failed ones included: the connection sweep to draw."""
    candidates = [c for c in results.conditions if not c.is_reference and not c.is_datagram
                  and c.get("work") in (None, "none") and c.get("mode") in ("closed", "open")]
    cells = results_mod.dominant(candidates, results_mod.COMPARABLE_KEYS + ("mode", "rate"))
    if len({c.get("connections") for c in cells}) < 2:
        raise NoData("no stream cells measured at two or more connection counts under one load")
    return cells


def _short(text, limit=38):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _error_label(condition):
    kinds = condition.errors_by_kind()
    total = condition.median("errors_total")
    if not total or not kinds:
        return None
    kind = max(kinds, key=kinds.get)
    return f"{condition.engine}: {total:,.0f} errors ({kind.replace('_', ' ')})"


def _mark_failures(ax, cells, metric, scale, log_y):
    """A red X at every failure: on the point when the cell ran with errors, at the bottom of
    the panel when it did not run at all. Returns [(label, point, transform)] for
    _place_labels, once the axes have their final limits."""
    pending = []
    for condition in sorted(cells, key=lambda c: style.engine_sort_key(c.engine)):
        x = condition.get("connections")
        value = condition.median(metric)
        if not condition.metrics:
            label = f"{condition.engine}: {_short(condition.failed[0][1]) if condition.failed else 'failed'}"
            coords = ax.get_xaxis_transform()
            ax.plot([x], [0.04], transform=coords, label=FAILED_LABEL, clip_on=False, **FAILURE_STYLE)
            pending.append((label, (x, 0.04), coords))
            continue
        label = _error_label(condition)
        if condition.failed:
            label = f"{condition.engine}: {len(condition.failed)} repetition(s) failed"
        if label is None or value is None or (log_y and value <= 0):
            continue
        ax.plot([x], [value * scale], label=ERRORS_LABEL, **FAILURE_STYLE)
        pending.append((label, (x, value * scale), ax.transData))
    return pending


def _place_labels(ax, pending):
    """Each label beside its X, towards the inside of the panel; labels at one x kept at least
    a line apart, so that the failures of several engines at one count stay readable."""
    ax.autoscale_view()
    to_axes = ax.transAxes.inverted()
    points_per_pixel = 72.0 / ax.figure.dpi
    placed = []
    for label, point, coords in pending:
        pixel = coords.transform(point)
        fx, fy = to_axes.transform(pixel)
        placed.append((point[0], fx > 0.5, fy > 0.5, pixel[1] * points_per_pixel, label, point, coords))
    last = {}  # (x, down) -> where the previous label there went (points from the bottom)
    for x, right, down, y, label, point, coords in sorted(placed, key=lambda p: (p[0], p[2], -p[3] if p[2] else p[3])):
        wanted = y - 10 if down else y + 10
        previous = last.get((x, down))
        if previous is not None:
            wanted = min(wanted, previous - 10) if down else max(wanted, previous + 10)
        last[(x, down)] = wanted
        ax.annotate(label, point, xycoords=coords, xytext=(-7 if right else 7, wanted - y),
                    textcoords="offset points", ha="right" if right else "left", va="center", fontsize=7,
                    color="#CC0000")


def throughput_and_p99_vs_connections(results):
    cells = _sweep(results)
    lines = results_mod.by_engine(cells, "connections")
    # Server memory per connection, in a third panel, when the runner recorded it.
    with_memory = any(c.values(MEMORY_METRIC) for c in cells)
    figure, axes = style.new_figure(panels=3 if with_memory else 2, height_in=4.9)
    rate_ax, p99_ax = axes[:2]
    drawn = draw.engine_lines(rate_ax, lines, "msgs_per_s", mark_invalid=True)
    draw.engine_lines(p99_ax, lines, "p99_us", scale=1e-3, mark_invalid=True)
    if with_memory:
        memory_ax = axes[2]
        draw.engine_lines(memory_ax, lines, MEMORY_METRIC, scale=1 / 1024)
        # Log scale: a process per connection costs hundreds of times a readiness loop's buffers.
        style.format_axis(memory_ax, "concurrent connections (log scale)", "KiB per connection held (log)",
                          log_x=True, log_y=True, x_ticks=[c.get("connections") for c in cells])
        memory_ax.set_title("server memory per connection\n(RSS growth over the idle server)", fontsize=10)
    rate_failures = _mark_failures(rate_ax, cells, "msgs_per_s", 1.0, log_y=False)
    p99_failures = _mark_failures(p99_ax, cells, "p99_us", 1e-3, log_y=True)
    if not drawn and not rate_failures:
        raise NoData("the connection sweep has no throughput in its results")
    x_ticks = [c.get("connections") for c in cells]
    style.format_axis(rate_ax, "concurrent connections (log scale)", "echoes per second (msgs/s)", log_x=True,
                      x_ticks=x_ticks)
    rate_ax.set_ylim(bottom=0)
    style.format_axis(p99_ax, "concurrent connections (log scale)", "p99 latency (ms, log scale)", log_x=True,
                      log_y=True, x_ticks=x_ticks)
    _place_labels(rate_ax, rate_failures)
    _place_labels(p99_ax, p99_failures)
    rate_ax.set_title("throughput", fontsize=10)
    p99_ax.set_title("p99 latency (from intended send)" if cells[0].get("mode") == "open"
                     else "p99 latency", fontsize=10)
    mode = cells[0].get("mode")
    load = (f"open loop at {style.human(cells[0].get('rate'))} msgs/s in total" if mode == "open"
            else f"closed loop, pipeline {cells[0].get('pipeline') or 1}")
    style.finish(figure, "Throughput and p99 vs connections", results, legend_axes=axes,
                 subtitle=f"{load}, {results_mod.describe(cells[0])}",
                 note="median of the repetitions; error bars span min–max; a red X marks a failure where it happened")
    caption = ("The same load spread over more and more connections. A red ✕ marks where an engine failed: on its "
               "point when the client counted errors (select refusing descriptors past FD_SETSIZE, a capped "
               "engine's clients waiting in the backlog until they time out), at the bottom of the panel when "
               "the cell did not run at all (the runner's reason beside it).")
    return figure, caption
