"""What each message costs the server (CPU, system calls, memory per connection), and how
the engines cope with service work per message (CPU-bound vs blocking)."""
import re

from . import draw, results as results_mod, style
from .figure import NoData

COST_PANELS = [("server_cpu_us_per_msg", 1.0, "server CPU per message, µs\n(user + system)"),
               ("syscalls_per_msg", 1.0, "system calls per message"),
               ("pss_per_connection_bytes", 1 / 1024, "peak memory per connection, KiB\n(PSS of all processes)")]


def _engine_series(cells, group_key):
    by_engine = results_mod.by_engine(cells, group_key)
    return [(engine, engine, by_engine[engine]) for engine in style.ordered(by_engine)]


def server_cost(results):
    candidates = results.measured(lambda c: not c.is_reference and not c.is_datagram and c.get("mode") == "closed"
                                  and c.get("work") in (None, "none"))
    cells = results_mod.dominant(candidates)
    if not cells:
        raise NoData("no closed-mode stream cells without service work")
    groups = sorted({c.get("connections") for c in cells})
    series = _engine_series(cells, "connections")
    figure, axes = style.new_figure(rows=len(COST_PANELS), height_in=2.9)
    drawn = 0
    for ax, (metric, scale, ylabel) in zip(axes, COST_PANELS):
        bars = draw.grouped_bars(ax, groups, series, metric, scale=scale,
                                 group_label=lambda n: f"{n} connection{'s' if n != 1 else ''}")
        style.format_axis(ax, "", ylabel)
        if not bars:
            ax.text(0.5, 0.5, "no data in this result set", transform=ax.transAxes, ha="center", color="#777777")
        drawn += bars
    if not drawn:
        raise NoData("the closed-mode cells carry no server statistics or resource samples")
    axes[-1].set_xlabel("closed-loop load")
    style.finish(figure, "Server cost per message and per connection", results, legend_axes=list(axes),
                 subtitle=f"closed loop, {results_mod.describe(cells[0])}",
                 note="CPU and memory sampled from /proc for the server's whole process tree; median, min–max bars")
    caption = ("CPU µs/msg = (server user + system CPU) / messages the server echoed; system calls counted by the "
               "server's I/O layer; memory = peak PSS (shared pages split among the processes) / connections, which includes the server's "
               "fixed footprint and so falls as connections grow.")
    return figure, caption


def _work_order(work):
    """none first, then cpu:, then sleep:, each by amount (50us before 1ms)."""
    kind, _, amount = str(work).partition(":")
    match = re.fullmatch(r"([\d.]+)\s*(ns|us|µs|ms|s)?", amount)
    seconds = 0.0
    if match:
        units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, None: 1.0}
        seconds = float(match.group(1)) * units[match.group(2)]
    return ({"none": 0, "cpu": 1, "sleep": 2}.get(kind, 3), seconds, str(work))


def _work_label(work):
    kind, _, amount = str(work).partition(":")
    return {"none": "no work", "cpu": f"CPU {amount}", "sleep": f"sleep {amount}"}.get(kind, str(work))


def service_cost(results):
    keys = tuple(k for k in results_mod.COMPARABLE_KEYS if k != "work") + ("connections", "mode")
    with_work = results.measured(lambda c: not c.is_reference and c.get("mode") == "closed"
                                 and c.get("work") not in (None, "none"))
    cells = results_mod.dominant(with_work, keys)
    if not cells:
        raise NoData("no closed-mode cells with service work (--work cpu:… or sleep:…)")
    signature = [cells[0].get(k) for k in keys]
    # The same load without work, if measured, is the baseline every bar group is compared to.
    baseline = results.measured(lambda c: not c.is_reference and c.get("work") in (None, "none")
                                and [c.get(k) for k in keys] == signature)
    cells = cells + baseline
    groups = sorted({c.get("work") or "none" for c in cells}, key=_work_order)
    figure, (ax,) = style.new_figure()
    if not draw.grouped_bars(ax, groups, _engine_series(cells, "work"), "msgs_per_s", group_label=_work_label):
        raise NoData("the service-work cells have no throughput (msgs_per_s)")
    style.format_axis(ax, "service work per message (server side)", "echoes per second (msgs/s, log scale)",
                      log_y=True)
    first = cells[0]
    style.finish(figure, "Throughput with service work per message: CPU-bound vs blocking", results,
                 legend_axes=ax, subtitle=f"closed loop, {first.get('connections')} connections, "
                                          f"{results_mod.describe(first, ('transport', 'size', 'workers'))}",
                 note="closed loop; median of the repetitions, error bars span min–max")
    caption = ("CPU work competes for the server's cores, so concurrency cannot help beyond them; sleeping work "
               "overlaps in engines that serve connections concurrently, and serialises in the others."
               + ("" if baseline else " No baseline without work at this load was measured."))
    return figure, caption
