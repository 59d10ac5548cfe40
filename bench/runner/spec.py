"""Benchmark specs: a JSON file of defaults plus groups whose list-valued keys expand as a
cartesian product, so that "every stream engine at 1, 16 and 64 connections" is one line."""
import itertools
import json
import os
import re

from . import engines as engines_mod
from . import knee
from . import sides
from . import sockperf

SPEC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "specs")

# Every key a cell may set, with its default. Values that are lists in a group expand.
CELL_DEFAULTS = {
    "engine": "select",
    "transport": "tcp",
    "protocol": "framed",
    "mode": "closed",
    "connections": 16,
    "pipeline": 1,
    # msgs/s offered in open mode, or {"sweep": "capacity", "from": 0.1, "to": 1.2, "steps": 8}:
    # a plan that measures the engine's closed-loop capacity first and offers fractions of it
    # (runner.knee).
    "rate": None,
    # With a capacity sweep: {"percentile": 99, "max_us": 1000, "steps": 6, "max_s": 120}, a
    # search for the highest rate that meets this latency objective (runner.knee).
    "slo": None,
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
    # After the cell's load generator run, the same engine again under sockperf's unmodified
    # ping-pong client (runner.cell.run_sockperf_client): a second, independent client on the
    # same server, so the report can show the two agreeing (or not). It adds to the cell, it
    # does not change what the load generator measured: a group that repeats a cell only to
    # turn it on adds it to that cell.
    "sockperf_client": False,
    # Load generators sharing the cell's load (its connections and rate are totals): more than
    # one runs echolab-loadgen-mpi under mpirun, one rank per generator, each in a network
    # namespace of its own when the runner is root (runner.cell.run_echolab_cell).
    "generators": 1,
}

# Keys that add a side run to a cell without changing the cell's own measurement.
ADD_ON_KEYS = ("sockperf_client",)
# Where sockperf's client can measure an engine: over the transports both sockperf and the
# engine speak, and in a closed loop at depth 1, since its ping-pong waits for each reply
# before it sends again.
SOCKPERF_TRANSPORTS = ("tcp", "udp")



class SpecError(Exception):
    pass


def spec_path(name_or_file):
    if os.path.isfile(name_or_file):
        return name_or_file
    candidate = os.path.join(SPEC_DIR, name_or_file + ".json")
    if os.path.isfile(candidate):
        return candidate
    raise SpecError(f"no spec '{name_or_file}': give a file or one of {', '.join(shipped_specs())}")


def shipped_specs():
    """The names --spec takes without a path: the files of bench/specs."""
    return sorted(f[:-5] for f in os.listdir(SPEC_DIR) if f.endswith(".json"))


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
    cells, seen = [], {}  # seen: the cell of each identity (its keys but the add-ons)
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
            try:
                knee.check_plan_cell(cell)
            except knee.KneeSpecError as error:
                raise SpecError(f"matrix group {index}: {error}") from None
            if not isinstance(cell["sockperf_client"], bool):
                raise SpecError(f"matrix group {index}: sockperf_client must be true or false")
            _check_generators(cell, index)
            key = json.dumps({k: v for k, v in cell.items() if k not in ADD_ON_KEYS}, sort_keys=True)
            if key not in seen:
                seen[key] = cell
                cells.append(cell)
            else:
                for add_on in ADD_ON_KEYS:
                    seen[key][add_on] = seen[key][add_on] or cell[add_on]
    for cell in cells:
        _check_sockperf_client(cell, engine_table)
    return cells


def _check_server_args(cell, index):
    if not isinstance(cell["server_args"], str):
        raise SpecError(f"matrix group {index}: server_args must be a string of server options")
    try:
        sides.parse_server_args(cell["server_args"], "server_args")
    except sides.SideError as error:
        raise SpecError(f"matrix group {index}: {error}") from None


def _check_generators(cell, index):
    """A whole number of generators, each with a connection and a thread of its own (what
    echolab-loadgen-mpi would refuse only after mpirun had started every rank)."""
    generators = cell["generators"]
    if isinstance(generators, bool) or not isinstance(generators, int) or generators < 1:
        raise SpecError(f"matrix group {index}: generators must be a whole number from 1, not {generators!r}")
    if generators == 1:
        return
    if cell["reference"]:
        raise SpecError(f"matrix group {index}: generators {generators} on a reference cell: a peer tool's "
                        "own client runs alone")
    if cell["sockperf_client"]:
        raise SpecError(f"matrix group {index}: generators {generators} with sockperf_client: sockperf's "
                        "client is one process")
    per_generator = int(cell["connections"]) // generators
    if per_generator < max(1, int(cell["loadgen_threads"] or 1)):
        raise SpecError(f"matrix group {index}: {cell['connections']} connections over {generators} generators "
                        f"leave some with fewer than one per thread (loadgen_threads {cell['loadgen_threads']})")


def check_generators_available(cells, binaries):
    """SpecError (one line) when a cell asks for more than one generator and the build's
    programs (runner.main.binaries_in) cannot run them: echolab-loadgen-mpi not built (no MPI
    when it was configured), or no mpirun on PATH."""
    wanting = [cell for cell in cells if cell["generators"] > 1]
    if not wanting:
        return
    example = f"{cell_id(wanting[0])} asks for {wanting[0]['generators']} generators"
    if not binaries.get("loadgen_mpi"):
        raise SpecError(f"{example}, and echolab-loadgen-mpi was not built (CMake found no MPI; Debian: "
                        "apt-get install openmpi-bin libopenmpi-dev, then configure again)")
    if not binaries.get("mpirun"):
        raise SpecError(f"{example}, and there is no mpirun on PATH (Debian: apt-get install openmpi-bin)")


def _check_sockperf_client(cell, engine_table):
    """A sockperf_client side run only where sockperf's ping-pong client can measure the
    cell's engine as the load generator did; the engine's transports come from its registry row."""
    if not cell["sockperf_client"]:
        return
    where = f"sockperf_client on {cell['reference'] or cell['engine']} ({cell_id(cell)})"
    if cell["reference"]:
        raise SpecError(f"{where}: a reference cell is already a peer tool's own client and server")
    if cell["mode"] != "closed" or cell["pipeline"] != 1:
        raise SpecError(f"{where}: needs a closed loop at depth 1 (mode closed, pipeline 1), "
                        "as sockperf's ping-pong waits for each reply before it sends again")
    if not str(cell["size"]).isdigit() or int(cell["size"]) > sockperf.MAX_MESSAGE_SIZE:
        raise SpecError(f"{where}: needs a fixed message size of at most {sockperf.MAX_MESSAGE_SIZE} bytes "
                        f"(sockperf's -m), not {cell['size']!r}")
    if cell["transport"] not in SOCKPERF_TRANSPORTS:
        raise SpecError(f"{where}: sockperf's client speaks {' or '.join(SOCKPERF_TRANSPORTS)}, "
                        f"not {cell['transport']}")
    if engine_table is None:
        raise SpecError(f"{where}: needs the engine table (echolab-server --list-engines --json)")
    row = next((row for row in engine_table if row.get("name") == cell["engine"]), None)
    if row is None:
        raise SpecError(f"{where}: no engine {cell['engine']!r} in the engine table")
    if cell["transport"] not in row.get("transports", ()):
        raise SpecError(f"{where}: {cell['engine']} does not serve {cell['transport']} "
                        f"(it serves {', '.join(row.get('transports', ())) or 'nothing'})")


def cell_id(cell):
    """A short, readable, unique-enough name for file names."""
    parts = [cell["reference"] or cell["engine"], cell["transport"], cell["mode"], f"c{cell['connections']}",
             f"s{cell['size']}".replace("..", "-").replace(",", "_").replace(":", "w")]
    if knee.is_plan(cell):
        parts.append(knee.plan_label(cell))
    elif cell["mode"] == "open":
        parts.append(f"r{cell['rate']}")
    if cell["pipeline"] != 1:
        parts.append(f"d{cell['pipeline']}")
    if cell["work"] != "none":
        parts.append(cell["work"].replace(":", "-"))
    if cell["protocol"] != "framed":
        parts.append(cell["protocol"])
    if cell.get("server_args"):
        parts.append(re.sub(r"[^A-Za-z0-9.]+", "-", cell["server_args"]).strip("-"))
    if (cell.get("generators") or 1) > 1:
        parts.append(f"g{cell['generators']}")
    return "_".join(str(p) for p in parts)
