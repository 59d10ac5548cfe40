"""Reading an echolab-bench result set: the manifest, every cell's repetitions, and the
per-repetition numbers the figures and the report need.

Every number is read defensively (a missing or renamed key gives None, never an exception):
the load generator's JSON is still evolving, and a figure with no data is skipped with a note
instead of failing the whole report.
"""
import json
import math
import os
import re
import statistics

from . import histogram as histogram_mod

DATAGRAM_TRANSPORTS = ("udp", "unix-dgram")
# The knobs that make two cells comparable; everything else in a cell (timeouts, limits,
# durations) is the same across a spec's cells or does not change what is measured. The
# generator count is one: a figure of connections must not mix loads from 1 and 4 generators.
COMPARABLE_KEYS = ("transport", "protocol", "size", "pipeline", "work", "workers", "generators")


class ResultSetError(Exception):
    pass


def dig(document, *path):
    """document[path[0]][path[1]]..., or None as soon as a level is missing."""
    for key in path:
        if isinstance(document, dict):
            document = document.get(key)
        elif isinstance(document, list) and isinstance(key, int) and -len(document) <= key < len(document):
            document = document[key]
        else:
            return None
    return document


def number(value):
    """A finite float, or None (missing, null, bool, text, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def ratio(numerator, denominator, scale=1.0):
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator * scale


LATENCY_KEYS = {"p50_us": "p50", "p90_us": "p90", "p99_us": "p99", "p99_9_us": "p99.9",
                "p99_99_us": "p99.99", "mean_us": "mean", "max_us": None}


def _latency_summary(loadgen):
    """Corrected latency summary in µs; accepts both `p50_us` and older bare `p50`/`mean` keys."""
    summary = dig(loadgen, "latency", "corrected") or {}
    out = {}
    for key in LATENCY_KEYS:
        bare = key[:-3]
        out[key] = number(summary.get(key, summary.get(bare)))
    return out


def _server_metrics(record, connections):
    stats = dig(record, "server", "stats") or {}
    resources = dig(record, "server", "resources") or {}
    messages = number(dig(stats, "counters", "messages"))
    user, system = number(resources.get("cpu_user_s")), number(resources.get("cpu_sys_s"))
    cpu = None if user is None or system is None else user + system
    syscalls_per_msg = number(stats.get("syscalls_per_message"))
    if syscalls_per_msg is None:
        syscalls_per_msg = ratio(number(stats.get("syscalls_total")), messages)
    pss = number(resources.get("peak_pss_bytes"))
    return {
        **_worker_shares(stats),
        "idle_wakeups_per_accept": number(dig(stats, "accept_wakeups", "idle_per_accept")),
        "server_messages": messages,
        "server_cpu_us_per_msg": ratio(cpu, messages, 1e6),
        "syscalls_per_msg": syscalls_per_msg,
        "peak_rss_bytes": number(resources.get("peak_rss_bytes")),
        "peak_pss_bytes": pss,
        "pss_per_connection_bytes": ratio(pss, connections),
        # The runner's figure: the server's growth over its idle RSS per connection it held.
        "rss_added_per_connection_bytes": number(dig(record, "server", "memory_per_connection", "rss_added_bytes")),
        "connections_refused": number(dig(stats, "counters", "connections_refused")),
    }


def _worker_shares(stats):
    """The busiest and idlest worker's share (%) of the messages and of the connections, for
    engines that spread work over several loops or workers (the stats' "workers" list)."""
    listed = stats.get("workers")  # older result sets give only a count here
    workers = [w for w in listed if isinstance(w, dict)] if isinstance(listed, list) else []
    out = {}
    if len(workers) < 2:
        return out
    for what in ("messages", "connections"):
        counts = [number(w.get(what)) or 0.0 for w in workers]
        total = sum(counts)
        if total > 0:
            out[f"worker_{what}_share_min_pct"] = 100.0 * min(counts) / total
            out[f"worker_{what}_share_max_pct"] = 100.0 * max(counts) / total
    return out


def _sockperf_metrics(summary):
    """A sockperf client's summary (a reference cell's, or a cell's sockperf_client side run)
    under the load generator's metric names."""
    latency = summary.get("latency_us") or {}
    metrics = {key: number(latency.get(bare)) for key, bare in LATENCY_KEYS.items() if bare}
    metrics["msgs_per_s"] = number(summary.get("messages_per_s"))
    return metrics


def _sockperf_client_metrics(record):
    """sockperf_msgs_per_s, sockperf_p50_us, ...: sockperf's own client against the cell's
    engine, beside the load generator's numbers; nothing if the cell had no such side run or
    it failed (its error is the Condition's sockperf_client_errors())."""
    side = record.get("sockperf_client")
    if not isinstance(side, dict) or "error" in side:
        return {}
    return {f"sockperf_{key}": value for key, value in _sockperf_metrics(side).items()}


def repetition_metrics(record):
    """The numbers of one repetition; None where the record does not have them."""
    cell = record.get("cell") or {}
    reference = record.get("reference")
    if isinstance(reference, dict):  # a peer tool's measurement, not the load generator's
        metrics = _sockperf_metrics(reference)
        metrics.update(valid=True, invalid_reasons=[], errors_total=0.0, errors_by_kind={})
        return metrics
    loadgen = record.get("loadgen") or {}
    errors = loadgen.get("errors") or {}
    errors_by_kind = {kind: number(n) for kind, n in errors.items() if kind != "total" and number(n)}
    sent = number(dig(loadgen, "messages", "sent"))
    timeouts = number(errors.get("timeout"))
    metrics = _latency_summary(loadgen)
    metrics.update(_server_metrics(record, number(cell.get("connections"))))
    metrics.update(_sockperf_client_metrics(record))
    metrics.update(
        msgs_per_s=number(dig(loadgen, "throughput", "msgs_per_s")),
        # Achieved over the closed-loop capacity a capacity sweep offered a fraction of.
        capacity_share=ratio(number(dig(loadgen, "throughput", "msgs_per_s")),
                             number(dig(cell, "knee", "capacity_msgs_per_s"))),
        sent_msgs_per_s=number(dig(loadgen, "throughput", "sent_msgs_per_s")),
        asked_msgs_per_s=number(dig(loadgen, "throughput", "asked_msgs_per_s")) or number(cell.get("rate")),
        errors_total=number(errors.get("total")) if "total" in errors else sum(errors_by_kind.values()),
        errors_by_kind=errors_by_kind,
        loss_percent=ratio(timeouts, sent, 100.0),
        valid=loadgen.get("valid") is not False,
        invalid_reasons=list(loadgen.get("invalid_reasons") or []),
    )
    return metrics


class Condition:
    """One cell of the spec with all its repetitions: the unit every figure draws from."""

    def __init__(self, label, cell):
        self.label, self.cell = label, cell
        self.records, self.metrics = [], []
        self.failed = []  # (cell id, reason) of repetitions that did not run

    @property
    def engine(self):
        """The series this condition belongs to: the engine, with its own options if any."""
        if self.cell.get("reference"):
            return self.cell["reference"]
        engine = self.cell.get("engine") or "?"
        args = (self.cell.get("server_args") or "").strip()
        return f"{engine} {args}" if args else engine

    @property
    def knee(self):
        """How a capacity sweep derived this cell ({"role", "plan", "capacity_of", "fraction", ...}),
        or {} for a cell the spec named directly."""
        knee = self.cell.get("knee")
        return knee if isinstance(knee, dict) else {}

    @property
    def capacity_fraction(self):
        """The offered rate as a fraction of the engine's measured closed-loop capacity, or None."""
        return number(self.knee.get("fraction"))

    @property
    def is_reference(self):
        return bool(self.cell.get("reference"))

    @property
    def is_datagram(self):
        return self.cell.get("transport") in DATAGRAM_TRANSPORTS

    def get(self, key):
        return self.cell.get(key)

    def values(self, metric):
        return [m[metric] for m in self.metrics if m.get(metric) is not None]

    def median(self, metric):
        values = self.values(metric)
        return statistics.median(values) if values else None

    def spread(self, metric):
        """(min, max) across repetitions, or None."""
        values = self.values(metric)
        return (min(values), max(values)) if values else None

    def invalid_reasons(self):
        reasons = []
        for m in self.metrics:
            reasons.extend(r for r in m.get("invalid_reasons", []) if r not in reasons)
        return reasons

    def invalid_repetitions(self):
        return sum(1 for m in self.metrics if not m.get("valid", True))

    def sockperf_client_errors(self):
        """Why the sockperf_client side run failed, once per distinct reason."""
        errors = []
        for record in self.records:
            error = dig(record, "sockperf_client", "error")
            if error and error not in errors:
                errors.append(error)
        return errors

    def errors_by_kind(self):
        total = {}
        for m in self.metrics:
            for kind, n in (m.get("errors_by_kind") or {}).items():
                total[kind] = total.get(kind, 0) + n
        return total

    def merged_histogram(self, which="corrected"):
        """The repetitions' histograms summed exactly, or None (missing or unreadable)."""
        parts = []
        for record in self.records:
            document = dig(record, "loadgen", "histograms", which)
            if document is None:
                continue
            try:
                parts.append(histogram_mod.Histogram.from_json(document))
            except histogram_mod.HistogramFormatError:
                return None
        try:
            return histogram_mod.merge_all(parts)
        except histogram_mod.HistogramFormatError:
            return None


# Runs of a capacity sweep that support it rather than draw its curve (see measured()).
SUPPORTING_ROLES = ("capacity", "slo-step")


class SloCapacity:
    """The highest rate an engine sustained with the run valid and the latency objective met,
    over the repetitions of its search: each repetition brackets it between the highest rate
    that passed and the lowest that failed, both measured."""

    def __init__(self, engine, side, connections, percentile, max_us):
        self.engine, self.side, self.connections = engine, side, connections
        self.percentile, self.max_us = percentile, max_us
        self.passing, self.failing, self.closed_loop, self.stopped = [], [], [], []
        self.failed_below = set()  # rates under a repetition's interval that failed
        self.steps = 0

    def add(self, entry, slo):
        interval = slo.get("interval_msgs_per_s")
        low, high = (interval + [None, None])[:2] if isinstance(interval, list) else (None, None)
        self.passing.append(number(low))
        self.failing.append(number(high))
        self.closed_loop.append(number(dig(entry, "capacity", "msgs_per_s")))
        self.steps += len(slo.get("steps") or [])
        self.stopped.append(slo.get("stopped") or "?")
        self.failed_below.update(v for v in (number(r) for r in slo.get("failed_below_msgs_per_s") or []) if v)

    @property
    def objective(self):
        return f"p{self.percentile:g} ≤ {self.max_us:g} µs"

    @property
    def rate(self):
        """The median of the repetitions' highest passing rates (0 where none passed)."""
        return statistics.median([low or 0.0 for low in self.passing])

    @property
    def interval(self):
        """(lowest passing, highest failing) over the repetitions: where the capacity lies in
        all of them. 0 below: some repetition passed at no rate it tried; None above: some
        passed at every rate it tried."""
        low = min(low or 0.0 for low in self.passing)
        high = None if any(h is None for h in self.failing) else max(self.failing)
        return low, high

    @property
    def closed_loop_rate(self):
        values = [v for v in self.closed_loop if v is not None]
        return statistics.median(values) if values else None


def _condition_label(cell_id, cell):
    label = re.sub(r"_r\d+$", "", cell_id or "")
    return label or json.dumps({k: v for k, v in cell.items() if k != "repetition"}, sort_keys=True)


class ResultSet:
    def __init__(self, directory):
        self.directory = os.path.abspath(directory)
        self.notes = []  # oddities met while loading, shown in the report
        self.manifest = self._read_manifest()
        self.conditions = []
        self.failed = []  # (cell id, reason)
        self._load_cells()
        self._drop_unmeasured_herd()

    # --- loading ---
    def _read_manifest(self):
        if not os.path.isdir(self.directory):
            raise ResultSetError(f"{self.directory} is not a directory")
        path = os.path.join(self.directory, "manifest.json")
        if os.path.exists(path):
            try:
                with open(path) as f:
                    manifest = json.load(f)
            except (OSError, json.JSONDecodeError) as error:
                raise ResultSetError(f"cannot read {path}: {error}") from None
            if not isinstance(manifest, dict) or not isinstance(manifest.get("cells"), list):
                raise ResultSetError(f"{path} is not an echolab-bench manifest (no 'cells' list)")
            return manifest
        # The runner writes the manifest last: an interrupted run still has its cell files.
        cells_dir = os.path.join(self.directory, "cells")
        if os.path.isdir(cells_dir) and any(name.endswith(".json") for name in os.listdir(cells_dir)):
            self.notes.append("no manifest.json (interrupted run?): read every file in cells/")
            names = sorted(name for name in os.listdir(cells_dir) if name.endswith(".json"))
            return {"cells": [{"id": name[:-5], "file": f"cells/{name}"} for name in names]}
        raise ResultSetError(f"{self.directory} is not an echolab-bench result set (no manifest.json, no cells/)")

    def _load_cells(self):
        by_key = {}
        for entry in self.manifest["cells"]:
            cell_id = entry.get("id", "?")
            record = self._read_record(entry)
            if record is None:
                continue
            cell = dict(record.get("cell") or {})
            cell.pop("repetition", None)
            key = json.dumps(cell, sort_keys=True)
            condition = by_key.get(key)
            if condition is None:
                condition = by_key[key] = Condition(_condition_label(record.get("id", cell_id), cell), cell)
                self.conditions.append(condition)
            if record.get("status") != "ok":
                reason = record.get("reason") or entry.get("reason") or "no reason given"
                condition.failed.append((cell_id, reason))
                self.failed.append((cell_id, reason))
                continue
            condition.records.append(record)
            condition.metrics.append(repetition_metrics(record))

    def _drop_unmeasured_herd(self):
        """Servers before the stats left it out wrote a zero accept-wake-up count for every
        engine; only the engines whose registry row offers the accept lock measure it."""
        table = self.manifest.get("engines")
        if not isinstance(table, list):
            return
        offers = {row.get("name"): row.get("offers_accept_lock") for row in table if isinstance(row, dict)}
        for condition in self.conditions:
            if offers.get(condition.cell.get("engine")) is False:
                for metrics in condition.metrics:
                    metrics.pop("idle_wakeups_per_accept", None)

    def _read_record(self, entry):
        cell_id = entry.get("id", "?")
        path = os.path.join(self.directory, entry.get("file") or f"cells/{cell_id}.json")
        try:
            with open(path) as f:
                record = json.load(f)
        except (OSError, json.JSONDecodeError) as error:
            reason = entry.get("reason") or f"cannot read {os.path.relpath(path, self.directory)}: {error}"
            self.failed.append((cell_id, reason))
            return None
        if not isinstance(record, dict):
            self.failed.append((cell_id, "cell file is not a JSON object"))
            return None
        return record

    # --- what the figures ask ---
    @property
    def run_id(self):
        return self.manifest.get("run_id") or os.path.basename(self.directory)

    @property
    def engine_order(self):
        """The engines in the registry's order, from the table the runner stored in the manifest;
        for older result sets, in the order their cells were run (the spec's, itself the registry's)."""
        table = self.manifest.get("engines")
        if isinstance(table, list) and table:
            return [row["name"] for row in table if isinstance(row, dict) and "name" in row]
        return [c.engine for c in self.conditions if not c.is_reference]

    @property
    def environment(self):
        return self.manifest.get("environment") or {}

    def measured(self, predicate=lambda c: True):
        """Conditions with at least one successful repetition that satisfy `predicate`. A
        capacity sweep's closed-loop capacity runs and its search steps are left out: they
        serve the sweep and the objective's figure, and would stand beside the spec's own cells
        of the same load as second, differently chosen points."""
        return [c for c in self.conditions
                if c.metrics and c.knee.get("role") not in SUPPORTING_ROLES and predicate(c)]

    @property
    def knee_summaries(self):
        """The runner's summary of each repetition of each capacity sweep (manifest "knee")."""
        entries = self.manifest.get("knee")
        return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []

    def slo_capacities(self):
        """The capacity at the latency objective, one SloCapacity per engine (variant, side),
        connection count and objective, in the order first measured."""
        found = {}
        for entry in self.knee_summaries:
            slo = entry.get("slo")
            if not isinstance(slo, dict):
                continue
            engine = entry.get("engine") or "?"
            args = (entry.get("server_args") or "").strip()
            series = f"{engine} {args}" if args else engine
            key = (series, entry.get("side"), entry.get("connections"), slo.get("percentile"), slo.get("max_us"))
            if key not in found:
                found[key] = SloCapacity(series, entry.get("side"), entry.get("connections"),
                                         number(slo.get("percentile")), number(slo.get("max_us")))
            found[key].add(entry, slo)
        return list(found.values())

    def references(self):
        return self.measured(lambda c: c.is_reference)


def dominant(conditions, keys=COMPARABLE_KEYS):
    """Only the conditions sharing the most common values of `keys` (ties: first seen), so a
    figure never mixes, say, 64-byte and 16-KiB messages on one line."""
    tally = {}
    for condition in conditions:
        signature = tuple(json.dumps(condition.get(k)) for k in keys)
        tally[signature] = tally.get(signature, 0) + 1
    if not tally:
        return []
    best = max(tally, key=tally.get)  # max() keeps the first of equal counts (insertion order)
    return [c for c in conditions if tuple(json.dumps(c.get(k)) for k in keys) == best]


def by_engine(conditions, x_key):
    """{engine: {x: condition}}; the first condition wins if two share an engine and x.
    `x_key`: a cell key, or a function of the condition."""
    lines = {}
    for condition in conditions:
        x = x_key(condition) if callable(x_key) else condition.get(x_key)
        if x is None:
            continue
        lines.setdefault(condition.engine, {}).setdefault(x, condition)
    return lines


def describe(condition, keys=("transport", "size", "work", "workers")):
    """'tcp, 64 B messages, workers 4' for titles: what the compared cells share."""
    parts = []
    for key in keys:
        value = condition.get(key)
        if value is None or (key == "work" and value == "none"):
            continue
        if key == "size":
            parts.append(f"{value} B messages")
        elif key == "workers":
            parts.append(f"pools of {value} workers")
        elif key == "work":
            parts.append(f"work {value}")
        else:
            parts.append(str(value))
    return ", ".join(parts)
