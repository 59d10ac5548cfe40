"""How much load each engine carries: closed-loop throughput vs connections, connection
set-up rate, and the datagram engines' throughput and loss."""
from . import draw, results as results_mod, style
from .figure import NoData


def _stream_closed_baseline(results):
    """Closed-loop stream cells without service work, all alike but for engine/connections."""
    candidates = results.measured(lambda c: not c.is_reference and not c.is_datagram and c.get("mode") == "closed"
                                  and c.get("work") in (None, "none"))
    return results_mod.dominant(candidates)


def throughput_vs_connections(results):
    cells = _stream_closed_baseline(results)
    lines = results_mod.by_engine(cells, "connections")
    if not lines:
        raise NoData("no closed-mode stream cells without service work")
    figure, (ax,) = style.new_figure()
    drawn = draw.engine_lines(ax, lines, "msgs_per_s")
    if not drawn:
        raise NoData("the closed-mode cells have no throughput (msgs_per_s) in their results")
    transport = cells[0].get("transport")
    references = draw.reference_points(ax, draw.matching_references(results, transport), 1, "msgs_per_s")
    style.format_axis(ax, "concurrent connections (log scale)", "echoes per second (msgs/s)", log_x=True,
                      x_ticks=[c.get("connections") for c in cells])
    ax.set_ylim(bottom=0)
    style.finish(figure, "Closed-loop throughput vs connections", results, legend_axes=ax,
                 subtitle=f"closed loop, {results_mod.describe(cells[0])}",
                 note="median of the repetitions; error bars span min–max")
    caption = ("Each connection sends its next message when the previous echo arrives (closed loop, "
               f"pipeline {cells[0].get('pipeline') or 1}): the server's capacity, not a latency target."
               + (" The star is the sockperf reference at 1 connection." if references else ""))
    return figure, caption


def connection_setup_rate(results):
    candidates = results.measured(lambda c: not c.is_reference and c.get("mode") == "connect")
    cells = results_mod.dominant(candidates)
    if not cells:
        raise NoData("no connect-mode cells")
    by_engine = results_mod.by_engine(cells, "connections")
    groups = sorted({c.get("connections") for c in cells})
    series = [(engine, engine, by_engine[engine]) for engine in style.ordered(by_engine)]
    figure, (ax,) = style.new_figure()
    if not draw.grouped_bars(ax, groups, series, "msgs_per_s", group_label=lambda n: f"{n} concurrent"):
        raise NoData("the connect-mode cells have no rate (msgs_per_s) in their results")
    style.format_axis(ax, "client connect loops running at once", "connections per second\n(connect, 1 echo, close)")
    style.finish(figure, "Connection set-up rate per engine", results, legend_axes=ax,
                 subtitle=f"connect mode, {results_mod.describe(cells[0])}",
                 note="median of the repetitions; error bars span min–max")
    caption = ("Connect mode: each loop connects, sends one message, waits for its echo and closes. fork pays a "
               "process per connection, thread a thread; the pools and select pay neither.")
    return figure, caption


def datagram_load(results):
    candidates = results.measured(lambda c: not c.is_reference and c.is_datagram and c.get("work") in (None, "none"))
    closed = results_mod.dominant([c for c in candidates if c.get("mode") == "closed"])
    opened = results_mod.dominant([c for c in candidates if c.get("mode") == "open"])
    rows = [row for row in (("closed", closed, "connections"), ("open", opened, "rate")) if row[1]]
    if not rows:
        raise NoData("no datagram (udp) cells without service work")
    figure, axes = style.new_figure(panels=2, rows=len(rows), height_in=3.9)
    for (mode, cells, x_key), (rate_ax, loss_ax) in zip(rows, zip(axes[::2], axes[1::2])):
        lines = results_mod.by_engine(cells, x_key)
        if x_key == "connections":
            xlabel = "sockets (log scale)"
            draw.engine_lines(rate_ax, lines, "msgs_per_s")
            draw.reference_points(rate_ax, draw.matching_references(results, cells[0].get("transport")), 1,
                                  "msgs_per_s")
            rate_ax.set_title("closed loop: echoes per second", fontsize=10)
            loss_ax.set_title("closed loop: messages lost (timed out)", fontsize=10)
        else:
            xlabel = "offered rate, msgs/s (log scale)"
            draw.engine_lines(rate_ax, lines, "msgs_per_s", mark_invalid=True)
            draw.offered_diagonal(rate_ax, [c.get("rate") for c in cells if c.get("rate")])
            rate_ax.set_title("open loop: achieved vs offered", fontsize=10)
            loss_ax.set_title("open loop: messages lost (timed out)", fontsize=10)
        draw.engine_lines(loss_ax, lines, "loss_percent", mark_invalid=(mode == "open"))
        x_ticks = [c.get(x_key) for c in cells]
        if mode == "open":  # log–log, so that 'achieved = offered' is the straight diagonal it is
            style.format_axis(rate_ax, xlabel, "echoes per second (msgs/s, log scale)", log_x=True, log_y=True,
                              x_ticks=x_ticks)
        else:
            style.format_axis(rate_ax, xlabel, "echoes per second (msgs/s)", log_x=True, x_ticks=x_ticks)
            rate_ax.set_ylim(bottom=0)
        style.format_axis(loss_ax, xlabel, "lost messages (% of sent)", log_x=True, x_ticks=x_ticks)
        loss_ax.set_ylim(0, max(1.0, loss_ax.get_ylim()[1] * 1.08))  # no loss reads as a flat 0 %, not noise
    style.finish(figure, "Datagram engines: throughput and loss", results, legend_axes=axes,
                 subtitle=results_mod.describe(rows[0][1][0]),
                 note="median of the repetitions; error bars span min–max; loss = timeouts / sent")
    caption = ("Datagrams are never retransmitted: past what an engine can echo, messages time out "
               "(counted as lost) instead of queueing.")
    return figure, caption
