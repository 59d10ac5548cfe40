"""One look for every figure: engine order, per-engine styles that survive black-and-white
printing (marker + line style + hatch, colour only as a bonus), titles, axis formatting, the
machine footer, and saving as SVG + PNG.

matplotlib is imported by the caller (main) before this module is used, with the Agg backend.
"""
import math
import os

import matplotlib.pyplot as plt
from matplotlib import ticker

# The engines in the order of the server's registry (the lecture's: from one at a time to
# event-driven, then the datagram engines), set from the result set by use_engine_order();
# the plots keep no list of engines of their own.
ENGINE_ORDER = []


def use_engine_order(names):
    """Sets the order (and so the styles) of the engines, from the result set's engine table."""
    ENGINE_ORDER[:] = list(dict.fromkeys(names))

# Okabe–Ito (its yellow, unreadable on white, replaced by brown): distinguishable with the
# common colour-vision deficiencies.
_PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#8C564B"]
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h"]
_LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (6, 2))]
_HATCHES = ["", "//", "..", "xx", "\\\\", "oo", "++", "--"]

REFERENCE_STYLE = {"color": "#555555", "marker": "*", "markersize": 13, "linestyle": "none"}
# A ring around the engine's own marker: visible in grey print, and the marker stays legible.
INVALID_STYLE = {"marker": "o", "markersize": 16, "markerfacecolor": "none", "markeredgecolor": "#CC0000",
                 "markeredgewidth": 1.8, "linestyle": "none"}

FIGURE_WIDTH_IN = 9.0
DPI = 110


def engine_sort_key(engine):
    """Known engines in lecture order (a variant such as "prefork --accept-lock" right after
    its engine), then any others alphabetically."""
    base, _, variant = engine.partition(" ")
    return (ENGINE_ORDER.index(base), variant) if base in ENGINE_ORDER else (len(ENGINE_ORDER), engine)


def ordered(engines):
    return sorted(set(engines), key=engine_sort_key)


def engine_style(engine):
    """The same (colour, marker, line style, hatch) for an engine in every figure."""
    if engine in ENGINE_ORDER:
        slot = ENGINE_ORDER.index(engine)
    else:  # stable for a given name, so it too stays the same across figures
        slot = len(ENGINE_ORDER) + sum(map(ord, engine))
    return {"color": _PALETTE[slot % len(_PALETTE)], "marker": _MARKERS[slot % len(_MARKERS)],
            "linestyle": _LINESTYLES[slot % len(_LINESTYLES)], "hatch": _HATCHES[slot % len(_HATCHES)]}


def line_kwargs(engine):
    style = engine_style(engine)
    return {"color": style["color"], "marker": style["marker"], "linestyle": style["linestyle"],
            "linewidth": 1.6, "markersize": 7, "markerfacecolor": "white", "markeredgewidth": 1.5,
            "label": engine}


def bar_kwargs(engine, label=None):
    style = engine_style(engine)
    return {"color": style["color"], "edgecolor": "black", "linewidth": 0.8, "hatch": style["hatch"],
            "label": engine if label is None else label}


def spread_errors(medians, spreads):
    """matplotlib yerr ([below], [above]) from medians and (min, max) pairs."""
    below = [m - s[0] if s else 0 for m, s in zip(medians, spreads)]
    above = [s[1] - m if s else 0 for m, s in zip(medians, spreads)]
    return [below, above]


def new_figure(panels=1, rows=1, height_in=4.6):
    figure, axes = plt.subplots(rows, panels, figsize=(FIGURE_WIDTH_IN if panels * rows > 1 else 7.5,
                                                       height_in * rows), squeeze=False)
    return figure, [ax for row in axes for ax in row]


class _HumanLogFormatter(ticker.LogFormatter):
    """Log-axis labels as '2k' instead of '2×10³'; matplotlib still decides which minor ticks
    get a label (only when the axis spans too little to show a whole decade)."""

    def _num_to_string(self, x, vmin, vmax):
        return human(x)


def format_axis(ax, xlabel, ylabel, log_x=False, log_y=False, x_ticks=None):
    """Labels, scales, grid. `x_ticks`: put the x ticks exactly at the measured values (the
    connection counts or rates of the spec), which is what a reader looks for."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    for axis, log in ((ax.xaxis, log_x), (ax.yaxis, log_y)):
        if log:
            (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
            axis.set_major_formatter(_HumanLogFormatter())
            axis.set_minor_formatter(_HumanLogFormatter(labelOnlyBase=False))
        elif not isinstance(axis.get_major_locator(), ticker.FixedLocator):  # keep bar group names
            axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: human(v)))
    if x_ticks:
        ax.xaxis.set_major_locator(ticker.FixedLocator(sorted(set(x_ticks))))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: human(v)))
        ax.xaxis.set_minor_locator(ticker.NullLocator())
    ax.grid(True, which="major", color="#cccccc", linewidth=0.6)
    ax.grid(True, which="minor", color="#eeeeee", linewidth=0.4)
    ax.set_axisbelow(True)


# Major ticks per decade by how many decades the x axis spans: a few labels in all, however
# many rates were measured (the measured rates themselves, 60k beside 90k, overlapped).
_LOG_SUBS_BY_SPAN = [(1.2, (1.0, 2.0, 3.0, 5.0)), (2.5, (1.0, 2.0, 5.0)), (4.0, (1.0, 3.0)), (math.inf, (1.0,))]


def sparse_log_x(ax, label=None):
    """Log x ticks that cannot collide however many rates were measured: a few per decade,
    fewer the more decades the axis spans, labelled by an engineering formatter ("60k", or
    `label(value)`), tilted; unlabelled minor ticks between them. Call after drawing."""
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    span = math.log10(high / low) if low > 0 and high > low else 1.0
    subs = next(subs for most, subs in _LOG_SUBS_BY_SPAN if span <= most)
    ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=subs, numticks=12))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: (label or human)(v)))
    ax.xaxis.set_minor_locator(ticker.LogLocator(base=10, subs="auto", numticks=12))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    ax.tick_params(axis="x", labelrotation=30)


def human(value):
    """1 500 -> '1.5k', 2e6 -> '2M': axis ticks people read at a glance."""
    magnitude = abs(value)
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= threshold:
            return f"{value / threshold:g}{suffix}"
    return f"{value:g}"


def footer_text(results):
    env = results.environment
    machine = env.get("cpu_model") or env.get("machine") or "unknown CPU"
    cores = f"{env['num_cpus']} cores" if env.get("num_cpus") else ""
    kernel = env.get("kernel") or ""
    date = (results.manifest.get("start_utc") or "")[:10]
    commit = results.manifest.get("git_commit")
    parts = [p for p in (machine, cores, kernel, date, f"run {results.run_id}",
                         f"commit {commit}" if commit else "") if p]
    return " · ".join(parts)


def _legend_columns(labels, width_in):
    """As many columns as fit across the figure. matplotlib fills the legend column by
    column and sizes each column to its widest entry; the width per character is a guess."""
    def entry_in(label):
        return 0.75 + 0.085 * len(label)

    for columns in range(len(labels), 1, -1):
        rows = math.ceil(len(labels) / columns)
        chunks = [labels[i:i + rows] for i in range(0, len(labels), rows)]
        if sum(max(entry_in(label) for label in chunk) for chunk in chunks) <= width_in - 0.3:
            return columns
    return 1


def finish(figure, title, results, subtitle="", legend_axes=None, note=None):
    """Title and subtitle (what is compared, under which load), one legend shared by all
    panels under them, the machine footer; then lays the panels out in the space left."""
    width_in, height_in = figure.get_figwidth(), figure.get_figheight()
    figure.text(0.5, 1 - 0.1 / height_in, title, ha="center", va="top", fontsize=12, fontweight="bold")
    header_in = 0.42
    if subtitle:
        figure.text(0.5, 1 - 0.36 / height_in, subtitle, ha="center", va="top", fontsize=9.5, color="#333333")
        header_in = 0.62
    footer_in = 0.08 + 0.13 * (2 if note else 1)
    legend_in = 0.0
    if legend_axes is not None:
        # Every label once, engines first in the usual order, then references and markers.
        unique = {}
        for ax in legend_axes if isinstance(legend_axes, (list, tuple)) else [legend_axes]:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                unique.setdefault(label, handle)
        unique = dict(sorted(unique.items(), key=lambda item: _legend_rank(item[0])))
        if unique:
            columns = _legend_columns(list(unique), width_in)
            legend_in = 0.1 + 0.24 * math.ceil(len(unique) / columns)
            figure.legend(list(unique.values()), list(unique.keys()), loc="lower center", ncol=columns,
                          frameon=False, fontsize=9, bbox_to_anchor=(0.5, footer_in / height_in))
    footer = footer_text(results) + (f"\n{note}" if note else "")
    figure.text(0.5, 0.06 / height_in, footer, ha="center", va="bottom", fontsize=7, color="#444444")
    figure.tight_layout(rect=(0.01, (footer_in + legend_in) / height_in, 1, 1 - header_in / height_in))


def _legend_rank(label):
    return (0, engine_sort_key(label)) if label in ENGINE_ORDER else (1, ("", ""))


def save(figure, out_dir, name):
    """Writes name.svg and name.png; returns the two file names (relative to out_dir)."""
    files = []
    for extension in ("png", "svg"):
        path = os.path.join(out_dir, f"{name}.{extension}")
        figure.savefig(path, dpi=DPI if extension == "png" else None, metadata=_metadata(extension))
        files.append(os.path.basename(path))
    plt.close(figure)
    return files


def _metadata(extension):
    # No creation date in the files: re-plotting the same results gives identical SVGs.
    return {"Date": None} if extension == "svg" else {"Software": "echolab-plot"}
