"""Benchmark specs: a JSON file of defaults plus groups whose list-valued keys expand as a
cartesian product, so that "every stream engine at 1, 16 and 64 connections" is one line."""
import itertools
import json
import os
import re

from . import engines as engines_mod
from . import sides

SPEC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "specs")

# Every key a cell may set, with its default. Values that are lists in a group expand.
CELL_DEFAULTS = {
    "engine": "select",
    "transport": "tcp",
    "protocol": "framed",
    "mode": "closed",
    "connections": 16,
    "pipeline": 1,
    "rate": None,
    "size": "64",
    "work": "none",
    "workers": 4,
    "max_children": 1024,
    "max_threads": 1024,
    "warmup_s": 0.5,
    "duration_s": 2.0,
    "timeout_s": 1.0,
    "loadgen_threads": 1,
    "reference": None,  # "sockperf": a peer tool's own client and server, as a yardstick
    # An engine's own options beyond the columns above ("--accept-lock", "--batch 64"): a
    # variant of the engine, drawn as a series of its own.
    "server_args": "",
}



class SpecError(Exception):
    pass


def spec_path(name_or_file):
    if os.path.isfile(name_or_file):
        return name_or_file
    candidate = os.path.join(SPEC_DIR, name_or_file + ".json")
    if os.path.isfile(candidate):
        return candidate
    names = sorted(f[:-5] for f in os.listdir(SPEC_DIR) if f.endswith(".json"))
    raise SpecError(f"no spec '{name_or_file}': give a file or one of {', '.join(names)}")


def load_spec(name_or_file):
    path = spec_path(name_or_file)
    try:
        with open(path) as f:
            spec = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        raise SpecError(f"cannot read spec {path}: {error}") from None
    if not isinstance(spec.get("matrix"), list) or not spec["matrix"]:
        raise SpecError(f"spec {path} needs a non-empty 'matrix' list")
    spec.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    spec.setdefault("repetitions", 3)
    return spec


def _expand_engines(value, engine_table):
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        if not (isinstance(v, str) and v.startswith("@")):
            out.append(v)
            continue
        if engine_table is None:
            raise SpecError(f"engine group {v} needs the engine table (echolab-server --list-engines --json)")
        members = engines_mod.group_members(v, engine_table)
        if members is None:
            raise SpecError(f"unknown engine group {v}: one of {', '.join(sorted(engines_mod.GROUPS))}")
        out.extend(members)
    return out


def expand_cells(spec, duration_override=None, engine_table=None):
    """The distinct cells of a spec, in spec order (repetitions are the runner's business).
    Engine groups ("@stream") are resolved against `engine_table`, the server's own rows."""
    defaults = dict(CELL_DEFAULTS)
    unknown = set(spec.get("defaults", {})) - set(CELL_DEFAULTS)
    if unknown:
        raise SpecError(f"unknown keys in defaults: {', '.join(sorted(unknown))}")
    defaults.update(spec.get("defaults", {}))
    cells, seen = [], set()
    for index, group in enumerate(spec["matrix"]):
        unknown = set(group) - set(CELL_DEFAULTS)
        if unknown:
            raise SpecError(f"matrix group {index}: unknown keys {', '.join(sorted(unknown))}")
        group = dict(group)
        if "engine" in group:
            group["engine"] = _expand_engines(group["engine"], engine_table)
        keys = list(group)
        lists = [group[k] if isinstance(group[k], list) else [group[k]] for k in keys]
        for combo in itertools.product(*lists):
            cell = dict(defaults)
            cell.update(zip(keys, combo))
            if duration_override is not None:
                cell["duration_s"] = duration_override
            _check_server_args(cell, index)
            key = json.dumps(cell, sort_keys=True)
            if key not in seen:
                seen.add(key)
                cells.append(cell)
    return cells


def _check_server_args(cell, index):
    if not isinstance(cell["server_args"], str):
        raise SpecError(f"matrix group {index}: server_args must be a string of server options")
    try:
        sides.parse_server_args(cell["server_args"], "server_args")
    except sides.SideError as error:
        raise SpecError(f"matrix group {index}: {error}") from None


def cell_id(cell):
    """A short, readable, unique-enough name for file names."""
    parts = [cell["reference"] or cell["engine"], cell["transport"], cell["mode"], f"c{cell['connections']}",
             f"s{cell['size']}".replace("..", "-").replace(",", "_").replace(":", "w")]
    if cell["mode"] == "open":
        parts.append(f"r{cell['rate']}")
    if cell["pipeline"] != 1:
        parts.append(f"d{cell['pipeline']}")
    if cell["work"] != "none":
        parts.append(cell["work"].replace(":", "-"))
    if cell["protocol"] != "framed":
        parts.append(cell["protocol"])
    if cell.get("server_args"):
        parts.append(re.sub(r"[^A-Za-z0-9.]+", "-", cell["server_args"]).strip("-"))
    return "_".join(str(p) for p in parts)
