"""echolab-bench --callgrind: user-space instructions per message, the gate's steady signal.

Per engine of the spec, the server runs under valgrind --tool=callgrind (counting from the
start, following forked children), the load generator sends a fixed number of messages
over one connection, closed loop, and a SIGTERM lets the server (and callgrind) finish and
write their files. The total Ir of every process's output file, divided by the messages the
server counted, is a run's count.

Start-up and shutdown cost millions of instructions (3 M for select, 15 M for a prefork pool
of 4: the loader, option parsing, one start per process), as much as thousands of messages,
so one run's total divided by its messages would mostly measure start-up. Each repetition
therefore makes two runs, of N/10 and N messages, and the figure is the slope between them:
(Ir(N) - Ir(N/10)) / (messages(N) - messages(N/10)), the marginal cost of a message. The
intercept (start-up and shutdown) is kept beside it, but not judged. Valgrind runs the server
many times slower, so the counts are fixed and small, and the runs come after the timed
cells, never among them."""
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from compare import callgrind as parse
from . import cell as cell_mod
from . import sides as sides_mod
from . import spec as spec_mod

DEFAULT_MESSAGES = 20000
SHORT_RUN_FRACTION = 10
DEFAULT_REPETITIONS = 3
READY_TIMEOUT_S = 60
STOP_TIMEOUT_S = 60


def cells_for(cells):
    """One cell per engine, in spec order: its first cell, as one connection closed loop from
    one plain echolab-loadgen. A server's instructions per message do not depend on how many
    generators (or connections) send them, and the count must be the same in every spec."""
    chosen, seen = [], set()
    for cell in cells:
        if cell.get("reference") or cell["engine"] in seen:
            continue
        seen.add(cell["engine"])
        one = dict(cell, mode="closed", connections=1, pipeline=1, rate=None, generators=1)
        chosen.append(one)
    return chosen


def valgrind_version():
    try:
        out = subprocess.run(["valgrind", "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def run_one(cell, binaries, cpus, messages):
    """One server under callgrind: {"instructions", "messages", "processes"}; raises CellFailure."""
    workdir = tempfile.mkdtemp(prefix="echolab-callgrind-")
    try:
        stats_path = os.path.join(workdir, "server-stats.json")
        listen = "unix:" + os.path.join(workdir, "echolab.sock") if cell["transport"].startswith("unix") \
            else "127.0.0.1:0"
        valgrind = ["valgrind", "--tool=callgrind", "--collect-atstart=yes", "--trace-children=yes",
                    "--quiet", f"--callgrind-out-file={workdir}/callgrind.out.%p"]
        server_cmd = cell_mod._pinned(valgrind + cell_mod.server_command(binaries, cell, stats_path, listen),
                                      cpus["server"])
        server = cell_mod.start_server(server_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            target = cell_mod.read_ready_line(server, READY_TIMEOUT_S)
            loadgen_cmd = [binaries["loadgen"], "--target", target, "--transport", cell["transport"],
                           "--protocol", cell["protocol"], "--mode", "closed", "--connections", "1",
                           "--size", str(cell["size"]), "--warmup", "0s", "--messages", str(messages),
                           "--timeout", "10s", "--time-limit", "300s", "--quiet", "--no-status",
                           "--json", os.path.join(workdir, "loadgen.json")]
            load = subprocess.run(cell_mod._pinned(loadgen_cmd, cpus["client"]), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=330)
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise cell_mod.CellFailure(f"server under callgrind did not exit within {STOP_TIMEOUT_S}s "
                                           "of SIGTERM") from None
            if load.returncode != 0:
                message = load.stderr.decode(errors="replace").strip().splitlines()
                raise cell_mod.CellFailure("load generator failed: "
                                           + (message[-1] if message else f"status {load.returncode}"))
            if server.returncode != 0:
                message = server.stderr.read().decode(errors="replace").strip().splitlines()
                raise cell_mod.CellFailure(f"server under callgrind exited with status {server.returncode}"
                                           + (f": {message[-1]}" if message else ""))
        finally:
            cell_mod.kill_group(server)
        with open(stats_path) as f:
            counted = (json.load(f).get("counters") or {}).get("messages")
        if not isinstance(counted, int) or counted <= 0:
            raise cell_mod.CellFailure("the server counted no messages")
        outputs = sorted(glob.glob(os.path.join(workdir, "callgrind.out.*")))
        if not outputs:
            raise cell_mod.CellFailure("callgrind wrote no output file")
        try:
            total = parse.instructions(outputs)
        except parse.FormatError as error:
            raise cell_mod.CellFailure(str(error)) from None
        return {"instructions": total, "messages": counted, "processes": len(outputs)}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def marginal(cell, binaries, cpus, messages):
    """The slope between a short and a long run: instructions per message without start-up."""
    short = run_one(cell, binaries, cpus, max(1, messages // SHORT_RUN_FRACTION))
    long = run_one(cell, binaries, cpus, messages)
    extra = long["messages"] - short["messages"]
    if extra <= 0:
        raise cell_mod.CellFailure(f"the long run counted {long['messages']} messages, the short one "
                                   f"{short['messages']}: no slope")
    per_message = (long["instructions"] - short["instructions"]) / extra
    return {"instructions_per_msg": per_message,
            "fixed_instructions": round(long["instructions"] - per_message * long["messages"]),
            "processes": long["processes"], "counts": [short, long]}


def run(cells, per_side, side_names, cpus, messages, repetitions, out_dir, progress_note):
    """Runs every engine's callgrind cell for every side, sides interleaved (A B, B A, ...);
    writes out_dir/callgrind.json and returns its manifest entry."""
    chosen = cells_for(cells)
    runs = []
    for rep in range(repetitions):
        for cell in chosen:
            for side in sides_mod.side_order(side_names, rep):
                label = spec_mod.cell_id(cell)
                progress_note(f"callgrind {label} {side or ''} r{rep}")
                started = time.monotonic()
                record = {"id": label, "side": side or None, "repetition": rep, "cell": cell}
                try:
                    record.update(marginal(cell, per_side[side], cpus, messages), status="ok")
                except (cell_mod.CellFailure, subprocess.TimeoutExpired, OSError, json.JSONDecodeError) as error:
                    record.update(status="failed", reason=str(error))
                record["seconds"] = round(time.monotonic() - started, 2)
                runs.append(record)
    document = {"schema": "echolab.callgrind/1", "tool": valgrind_version(), "messages": messages,
                "repetitions": repetitions, "runs": runs}
    with open(os.path.join(out_dir, parse.FILE_NAME), "w") as f:
        json.dump(document, f, indent=1)
    failed = sum(1 for r in runs if r["status"] != "ok")
    return {"file": parse.FILE_NAME, "messages": messages, "repetitions": repetitions, "runs": len(runs),
            "failed": failed}
