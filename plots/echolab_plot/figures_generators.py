"""Throughput and p99 as generators are added against one engine (spec key "generators":
one load under mpirun, one rank per generator): linear while the generators are what limits
the load, flat once the server saturates."""
from . import draw, results as results_mod, style
from .figure import NoData


def _generator_sweep(results):
    """Stream cells without service work of the most common load (mode, connections, rate and
    the other comparable keys but the generator count): the sweep to draw."""
    candidates = results.measured(lambda c: not c.is_reference and not c.is_datagram
                                  and c.get("work") in (None, "none") and c.get("generators") is not None)
    keys = tuple(k for k in results_mod.COMPARABLE_KEYS if k != "generators") + ("mode", "connections", "rate")
    cells = results_mod.dominant(candidates, keys)
    if len({c.get("generators") for c in cells}) < 2:
        raise NoData("no stream cells measured with two or more generator counts under one load")
    return cells


def _network(cells):
    """How the ranks reached the server, as the runner recorded it ("namespaces", "loopback")."""
    networks = {(record.get("generators") or {}).get("network") for c in cells for record in c.records}
    return ", ".join(sorted(n for n in networks if n)) or "loopback"


def throughput_and_p99_vs_generators(results):
    cells = _generator_sweep(results)
    lines = results_mod.by_engine(cells, "generators")
    figure, (rate_ax, p99_ax) = style.new_figure(panels=2, height_in=4.6)
    drawn = draw.engine_lines(rate_ax, lines, "msgs_per_s", mark_invalid=True)
    if not drawn:
        raise NoData("the generator sweep has no throughput (msgs_per_s) in its results")
    draw.engine_lines(p99_ax, lines, "p99_us", scale=1e-3, mark_invalid=True)
    x_ticks = [c.get("generators") for c in cells]
    style.format_axis(rate_ax, "generators (MPI ranks, log scale)", "echoes per second, all generators (msgs/s)",
                      log_x=True, x_ticks=x_ticks)
    rate_ax.set_ylim(bottom=0)
    style.format_axis(p99_ax, "generators (MPI ranks, log scale)", "p99 latency, merged (ms, log scale)",
                      log_x=True, log_y=True, x_ticks=x_ticks)
    rate_ax.set_title("total throughput", fontsize=10)
    p99_ax.set_title("p99 latency of all generators' samples", fontsize=10)
    first = cells[0]
    load = (f"open loop at {style.human(first.get('rate'))} msgs/s in total" if first.get("mode") == "open"
            else f"closed loop, pipeline {first.get('pipeline') or 1}")
    style.finish(figure, "Throughput and p99 vs generators", results, legend_axes=[rate_ax, p99_ax],
                 subtitle=f"{load}, {first.get('connections')} connections in total, {results_mod.describe(first)}",
                 note=f"median of the repetitions; error bars span min–max; ranks over {_network(cells)}")
    caption = ("One load, the same connections in total, shared out over 1, 2, 4… generators (MPI ranks, each "
               "with its own threads) that start together; their histograms are merged exactly, so the p99 is "
               "that of all samples. Throughput grows with the generators while they are what limits the load, "
               "and flattens once the server saturates. One generator is a plain echolab-loadgen on loopback; "
               "more run under mpirun, each in a network namespace of its own when the runner is root.")
    return figure, caption
