"""Reading what echolab-compare compares: an echolab-bench result set (plain, or an A/B run
whose cells carry a "side"), a single bench cell file, or a single load generator JSON file.
Everything becomes Sides: per side, its cells with their repetitions' numbers."""
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "plots"))
from echolab_plot import histogram as histogram_mod  # noqa: E402  (pure standard library)


class InputError(Exception):
    """Inputs that cannot be compared; the message is the one line the user sees."""


# Cell keys that do not change what is measured, so two cells differing only there match:
# sockperf_client adds a side run after the load generator's and leaves its numbers alone
# (and result sets from before it have no such key).
NON_IDENTITY_KEYS = ("repetition", "side", "sockperf_client")
# Cell keys that came after result sets were recorded, with the value they had then: a cell
# at that value is the same cell as one without the key (one generator is what every cell
# before the "generators" key ran).
DEFAULTS_OF_LATER_KEYS = {"generators": 1}
LATENCY_KEYS = {"p50": "p50_us", "p99": "p99_us", "p99.9": "p99_9_us"}


def dig(document, *path):
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def per(numerator, denominator):
    return None if numerator is None or not denominator else numerator / denominator


def repetition_numbers(loadgen, server):
    """One repetition's metrics (see metrics.METRICS); None where the data lacks them."""
    out = {"throughput": number(dig(loadgen, "throughput", "msgs_per_s"))}
    for metric, key in LATENCY_KEYS.items():
        out[metric] = number(dig(loadgen, "latency", "corrected", key))
    errors = dig(loadgen, "errors", "total")
    out["errors"] = per(number(errors), number(dig(loadgen, "messages", "sent")))
    stats, resources = dig(server, "stats") or {}, dig(server, "resources") or {}
    messages = number(dig(stats, "counters", "messages"))
    user, system = number(resources.get("cpu_user_s")), number(resources.get("cpu_sys_s"))
    out["server_cpu_per_msg"] = per(None if user is None or system is None else (user + system) * 1e6, messages)
    syscalls = number(stats.get("syscalls_per_message"))
    out["syscalls_per_msg"] = syscalls if syscalls is not None else per(number(stats.get("syscalls_total")), messages)
    voluntary = number(resources.get("voluntary_ctxt_switches"))
    involuntary = number(resources.get("involuntary_ctxt_switches"))
    out["ctxsw_per_msg"] = per(None if voluntary is None or involuntary is None else voluntary + involuntary,
                               messages)
    return out


class Cell:
    """One cell of one side: every repetition's numbers, and why the cell cannot be judged."""

    def __init__(self, key, label, cell):
        self.key, self.label, self.cell = key, label, cell
        self.reps = []          # metric -> value, one dict per good repetition
        self.histograms = []    # corrected histogram JSON per good repetition (or None)
        self.skipped = None     # why this cell is not compared at all (a reference tool's cell)
        self.voided = []        # why each failed or invalid repetition does not count

    @property
    def void_reasons(self):
        """One line per kind of trouble: the first reason and how many repetitions had one."""
        if not self.voided:
            return []
        total = len(self.voided) + len(self.reps)
        more = f" (and {len(self.voided) - 1} more)" if len(self.voided) > 1 else ""
        return [f"{len(self.voided)} of {total} repetitions: {self.voided[0]}{more}"]

    def void(self, reason):
        self.voided.append(reason)

    def values(self, metric):
        return [r[metric] for r in self.reps if r.get(metric) is not None]

    def headline(self, metric):
        """The value shown: for latency the percentile of the repetitions' merged corrected
        histograms (a percentile of all messages, not an average of percentiles), otherwise
        the median over repetitions. Falls back to the median of the per-run percentiles
        when a histogram is missing or unreadable."""
        values = self.values(metric)
        if not values:
            return None
        if metric in LATENCY_KEYS and self.histograms and all(self.histograms):
            try:
                merged = histogram_mod.merge_all(histogram_mod.Histogram.from_json(h) for h in self.histograms)
                if merged is not None and merged.count:
                    return merged.value_at_percentile(float(metric[1:])) / 1000.0  # ns -> µs
            except histogram_mod.HistogramFormatError:
                pass
        return statistics.median(values)

    def add(self, loadgen, server):
        if loadgen.get("valid") is False:
            reasons = loadgen.get("invalid_reasons") or ["no reason given"]
            self.void("load generator invalid: " + "; ".join(str(r) for r in reasons))
            return
        self.reps.append(repetition_numbers(loadgen, server))
        self.histograms.append(dig(loadgen, "histograms", "corrected"))


class Side:
    def __init__(self, name, source):
        self.name, self.source = name, source
        self.cells = {}  # key -> Cell, in first-seen order
        self.host = {}
        self.info = {}   # run id, build, server args: shown in the report

    def cell(self, key, label, cell):
        if key not in self.cells:
            self.cells[key] = Cell(key, label, cell)
        return self.cells[key]

    def note_host(self, context):
        for key in ("cpu_model", "num_cpus", "kernel"):
            if context.get(key) is not None and key not in self.host:
                self.host[key] = context[key]

    @property
    def repetitions(self):
        counts = [len(c.reps) for c in self.cells.values()]
        return (min(counts), max(counts)) if counts else (0, 0)


def identity(cell):
    kept = {k: v for k, v in cell.items()
            if k not in NON_IDENTITY_KEYS and not (k in DEFAULTS_OF_LATER_KEYS and DEFAULTS_OF_LATER_KEYS[k] == v)}
    return json.dumps(kept, sort_keys=True)


def _label(record_id, cell):
    label = re.sub(r"(_(A|B|A2))?_r\d+$", "", record_id or "")
    return label or identity(cell)


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read {path}: {error}") from None


def _add_record(sides, record, source, manifest_side=None):
    side_name = record.get("side") or manifest_side or ""
    side = sides.setdefault(side_name, Side(side_name, source))
    cell = dict(record.get("cell") or {})
    target = side.cell(identity(cell), _label(record.get("id"), cell), cell)
    if record.get("status") != "ok":
        target.void(f"run failed: {record.get('reason') or 'no reason given'}")
        return
    if isinstance(record.get("reference"), dict):
        target.skipped = "a reference tool's cell (no echolab server to compare)"
        return
    loadgen = record.get("loadgen") or {}
    side.note_host(loadgen.get("context") or {})
    target.add(loadgen, record.get("server") or {})


def load_result_set(directory):
    """{side name ("" for a plain run): Side}, plus the manifest."""
    manifest_path = os.path.join(directory, "manifest.json")
    manifest = _read_json(manifest_path)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("cells"), list):
        raise InputError(f"{manifest_path} is not an echolab-bench manifest (no 'cells' list)")
    sides = {}
    for entry in manifest["cells"]:
        if not isinstance(entry, dict):
            raise InputError(f"{manifest_path}: a 'cells' entry is not an object")
        path = os.path.join(directory, entry.get("file") or f"cells/{entry.get('id')}.json")
        record = _read_json(path)
        if not isinstance(record, dict):
            raise InputError(f"{path} is not a bench cell object")
        _add_record(sides, record, directory, entry.get("side"))
    environment = manifest.get("environment") or {}
    side_info = manifest.get("sides") or {}
    for name, side in sides.items():
        if not side.host:
            side.note_host({"cpu_model": environment.get("cpu_model"), "num_cpus": environment.get("num_cpus"),
                            "kernel": environment.get("kernel")})
        info = side_info.get(name) or {}
        side.info = {"source": directory, "run_id": manifest.get("run_id"), "side": name or None,
                     "build": info.get("build", manifest.get("build")), "build_dir": info.get("build_dir"),
                     "server_args": info.get("server_args", []), "git_commit": manifest.get("git_commit")}
    return sides, manifest


def _loadgen_cell_key(config):
    """What a load generator run measured, without where it ran or its seed."""
    kept = {k: v for k, v in (config or {}).items() if k not in ("target", "seed", "cpus", "time_limit_s")}
    return json.dumps(kept, sort_keys=True)


def load_file(path):
    """A single bench cell file or load generator result: one side, one cell, one repetition."""
    document = _read_json(path)
    if not isinstance(document, dict):
        raise InputError(f"{path} is neither a bench cell nor a load generator result")
    side = Side("", path)
    if str(document.get("schema", "")).startswith("echolab.bench-cell"):
        sides = {}
        _add_record(sides, document, path)
        side = next(iter(sides.values()))
    elif document.get("schema") == "echolab.loadgen.result":
        config = document.get("config") or {}
        label = os.path.splitext(os.path.basename(path))[0]
        side.note_host(document.get("context") or {})
        side.cell(_loadgen_cell_key(config), label, config).add(document, {})
    else:
        raise InputError(f"{path} is neither a bench cell nor a load generator result (schema "
                         f"{document.get('schema')!r})")
    side.info = {"source": path, "run_id": None, "side": None,
                 "build": dig(document, "loadgen", "echolab", "version") or dig(document, "echolab", "version"),
                 "build_dir": None, "server_args": [], "git_commit": None}
    return side, None


def load(path):
    """({side name: Side}, manifest or None) for a directory or a file."""
    if os.path.isdir(path):
        return load_result_set(path)
    if os.path.isfile(path):
        side, manifest = load_file(path)
        return {"": side}, manifest
    raise InputError(f"{path}: no such file or directory")
