"""The knee of each engine without guessing rates, and its capacity at a latency objective.

A cell whose "rate" is {"sweep": "capacity", ...} is a plan, run as a sequence of real
measured runs, each recorded as a cell record of its own:

1. capacity: the same engine, connections and messages in a closed loop (one message in
   flight per connection): the rate it sustains when the clients wait for every reply;
2. sweep: the open loop offered log-spaced fractions of that capacity ("from" to "to"), so
   every engine's curve reaches its knee whatever its speed;
3. with "slo": {"percentile": 99, "max_us": 1000}, a bisection over the open-loop rate for
   the highest rate at which the run is valid and the objective is met.

Reporting throughput at a tail-latency objective, rather than the peak rate, is the idea of
Lancet (Kogias et al., USENIX ATC 2019) and TailBench (Kasture and Sanchez, IISWC 2016);
the search below is echolab's own.

Derived records carry their concrete rate and, under "knee", where it came from: the plan,
the capacity record ("capacity_of") and the fraction of that capacity."""
import math

SWEEP_DEFAULTS = {"from": 0.1, "to": 1.2, "steps": 8}
SLO_DEFAULTS = {"steps": 6, "max_s": 120.0}
# The percentiles the load generator summarises, and their keys in its latency summary.
SLO_PERCENTILES = {50: "p50_us", 90: "p90_us", 99: "p99_us", 99.9: "p99_9_us", 99.99: "p99_99_us"}
# The bisection stops once the bracket's ends are within this ratio: closer than the
# run-to-run noise of a shared machine, a further step would only measure the noise.
PRECISION_RATIO = 1.02
# A percentile judged from fewer samples than this many beyond it is the noise of a handful
# of messages (at p99, a run of 30 messages judges its maximum): see min_answered().
TAIL_SAMPLES = 10


def min_answered(percentile):
    """Answered messages a run needs before its `percentile` means anything: TAIL_SAMPLES
    of them beyond it (1,000 for p99, 20 for p50)."""
    return math.ceil(round(TAIL_SAMPLES / (1 - percentile / 100), 6))


class KneeSpecError(ValueError):
    pass


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _settings(value, name, defaults, required):
    if not isinstance(value, dict):
        raise KneeSpecError(f"{name} must be an object, not {value!r}")
    unknown = set(value) - set(defaults) - set(required)
    if unknown:
        raise KneeSpecError(f"{name}: unknown keys {', '.join(sorted(unknown))} "
                            f"(known: {', '.join(sorted(set(defaults) | set(required)))})")
    missing = [key for key in required if key not in value]
    if missing:
        raise KneeSpecError(f"{name} needs {', '.join(missing)}")
    return dict(defaults, **value)


def sweep_settings(rate):
    """The sweep of a plan cell's "rate" with its defaults, or KneeSpecError (one line)."""
    sweep = _settings(rate, "rate", SWEEP_DEFAULTS, ("sweep",))
    if sweep["sweep"] != "capacity":
        raise KneeSpecError(f"rate: sweep must be \"capacity\", not {sweep['sweep']!r}")
    if not (_number(sweep["from"]) and _number(sweep["to"]) and 0 < sweep["from"] < sweep["to"] <= 4):
        raise KneeSpecError(f"rate: needs 0 < from < to <= 4 (fractions of the capacity), "
                            f"not from {sweep['from']!r} to {sweep['to']!r}")
    if not (isinstance(sweep["steps"], int) and not isinstance(sweep["steps"], bool) and 2 <= sweep["steps"] <= 32):
        raise KneeSpecError(f"rate: steps must be an integer from 2 to 32, not {sweep['steps']!r}")
    return sweep


def slo_settings(slo):
    """A plan cell's "slo" with its defaults, or KneeSpecError (one line)."""
    slo = _settings(slo, "slo", SLO_DEFAULTS, ("percentile", "max_us"))
    if slo["percentile"] not in SLO_PERCENTILES or isinstance(slo["percentile"], bool):
        raise KneeSpecError(f"slo: percentile must be one of {', '.join(f'{p:g}' for p in SLO_PERCENTILES)} "
                            f"(the load generator's summary), not {slo['percentile']!r}")
    if not (_number(slo["max_us"]) and slo["max_us"] > 0):
        raise KneeSpecError(f"slo: max_us must be a positive number of microseconds, not {slo['max_us']!r}")
    if not (isinstance(slo["steps"], int) and not isinstance(slo["steps"], bool) and 1 <= slo["steps"] <= 20):
        raise KneeSpecError(f"slo: steps must be an integer from 1 to 20, not {slo['steps']!r}")
    if not (_number(slo["max_s"]) and slo["max_s"] > 0):
        raise KneeSpecError(f"slo: max_s (the search's time budget) must be a positive number, not {slo['max_s']!r}")
    return slo


def is_plan(cell):
    return isinstance(cell.get("rate"), dict)


def check_plan_cell(cell):
    """KneeSpecError unless `cell` is a well-formed plan (or no plan and no slo)."""
    if not is_plan(cell):
        if cell.get("slo") is not None:
            raise KneeSpecError("slo needs \"rate\": {\"sweep\": \"capacity\"}: the search starts from the "
                                "engine's measured capacity")
        return
    sweep_settings(cell["rate"])
    if cell.get("slo") is not None:
        slo_settings(cell["slo"])
    if cell.get("mode") != "open":
        raise KneeSpecError(f"a capacity sweep offers open-loop rates: it needs mode open, not {cell.get('mode')!r}")
    if cell.get("reference"):
        raise KneeSpecError("a capacity sweep measures an echolab engine, not a reference tool")


def plan_label(cell):
    """The id part of a plan: 'knee', and the objective if any ('slo-p99-1000us')."""
    label = "knee"
    if cell.get("slo") is not None:
        label += f"_slo-p{cell['slo']['percentile']:g}-{cell['slo']['max_us']:g}us"
    return label


def runs_in_plan(cell):
    """The most runs a plan makes (capacity, sweep, search steps): for the progress bar."""
    slo = cell.get("slo")
    return 1 + sweep_settings(cell["rate"])["steps"] + (slo_settings(slo)["steps"] if slo is not None else 0)


def sweep_fractions(sweep):
    """Log-spaced fractions of the capacity from sweep["from"] to sweep["to"], both included:
    equal steps on the log axis the figures draw them on."""
    low, high, steps = sweep["from"], sweep["to"], sweep["steps"]
    return [round(low * (high / low) ** (i / (steps - 1)), 4) for i in range(steps)]


def sweep_rates(capacity, sweep):
    """[(fraction, msgs/s)] of a capacity: whole messages per second, at least 1."""
    return [(fraction, max(1, round(fraction * capacity))) for fraction in sweep_fractions(sweep)]


def slo_verdict(record, slo):
    """(passed, why) of one open-loop run against the objective: the run ran, is valid (the
    generator kept its schedule), lost no message, answered enough messages for the
    percentile to mean something, and the percentile is within the bound. A message that
    timed out or was lost has no latency in the histograms, but it certainly missed the
    objective: a server that answers one client and leaves fifteen waiting does not meet a
    p99 of 1 ms however fast that one client is served."""
    if record.get("status") != "ok":
        return False, f"failed: {record.get('reason', 'no reason given')}"
    loadgen = record.get("loadgen") or {}
    if loadgen.get("valid") is False:
        return False, "invalid: " + "; ".join(loadgen.get("invalid_reasons") or ["no reason given"])
    failed = (loadgen.get("errors") or {}).get("total")
    answered = (loadgen.get("messages") or {}).get("received")
    if not _number(failed) or not _number(answered):
        return False, "no message or error counts in the load generator's summary"
    if failed > 0:
        return False, f"{failed:,} messages failed (timed out, lost or wrong): each missed the objective"
    needed = min_answered(slo["percentile"])
    if answered < needed:
        return False, (f"{answered:,} messages answered: a p{slo['percentile']:g} needs at least {needed:,}")
    key = SLO_PERCENTILES[slo["percentile"]]
    value = ((loadgen.get("latency") or {}).get("corrected") or {}).get(key)
    if not _number(value):
        return False, f"no {key} in the load generator's summary"
    if value > slo["max_us"]:
        return False, f"p{slo['percentile']:g} {value:,.0f} µs over {slo['max_us']:g} µs"
    return True, f"p{slo['percentile']:g} {value:,.0f} µs within {slo['max_us']:g} µs"


def _verdicts(results):
    """{rate: passed} from [(rate, passed)]: a rate measured more than once passes only if
    every run of it passed."""
    verdicts = {}
    for rate, passed in results:
        verdicts[rate] = verdicts.get(rate, True) and bool(passed)
    return verdicts


def _bracket(verdicts):
    """(passing, failing, band) of the results so far: the top of the highest band of
    consecutive passing rates, the lowest failure above it, and that band's rates. Without a
    pass: (None, lowest failure, [])."""
    rates = sorted(verdicts)
    top = max((rate for rate in rates if verdicts[rate]), default=None)
    if top is None:
        return None, (rates[0] if rates else None), []
    band = [top]
    for rate in reversed([rate for rate in rates if rate < top]):
        if not verdicts[rate]:
            break
        band.append(rate)
    failing = min((rate for rate in rates if rate > top), default=None)
    return top, failing, band


def search_slo_capacity(measure, low, high, max_steps, known=(), time_left=lambda: True,
                        precision=PRECISION_RATIO, floor=1):
    """The highest rate that passes, bracketed: a pure search over `measure(rate) -> bool`.

    `known` are (rate, passed) results measured already (the sweep's points). The bracket
    runs from the top of the highest band of consecutive passing rates to the lowest failure
    above it. Latency grows with load, so a failure under a band of passes is a run the
    machine disturbed, or a real low-load penalty (slow wake-ups of an idle server): it does
    not cap the rates above it that were measured to pass, and it is reported
    ("failed_below"). A lone pass above a failure, measured once, may be a disturbance the
    other way: it is measured again before the search relies on it, and a rate passes only
    if every run of it passed.

    Without a failure yet, the search tries `high` (then doubles); without a pass, `low`
    (then quarters); then it halves the bracket on the log scale (the geometric mean: rates
    span decades) until `max_steps` runs, the bracket is within `precision`, or
    `time_left()` says no. It never tries a rate under `floor` (too few messages in a run to
    judge the percentile), and stops when `floor` has failed.

    Returns {"interval": [highest passing or None, lowest failing above it or None],
    "failed_below": [failing rates under the interval], "steps": [(rate, passed)],
    "stopped": "steps" | "precision" | "time" | "floor"}: both ends were measured, and the
    capacity at the objective lies between them (None: not found on that side)."""
    results = [(rate, bool(passed)) for rate, passed in known]
    steps, stopped = [], "steps"
    while True:
        verdicts = _verdicts(results)
        passing, failing, band = _bracket(verdicts)
        if len(steps) >= max_steps:
            break
        # A pass above a failure contradicts latency growing with load; one that rests on a
        # single run (no passing neighbour, never repeated) is measured again.
        unconfirmed = (len(band) == 1 and sum(1 for rate, _ in results if rate == passing) == 1
                       and any(not ok and rate < passing for rate, ok in verdicts.items()))
        if not unconfirmed and passing is not None and failing is not None and failing <= passing * precision:
            stopped = "precision"
            break
        if not time_left():
            stopped = "time"
            break
        # Compared as whole msgs/s: a sweep's rates are the same fractions, rounded.
        if unconfirmed:
            rate = passing
        elif failing is None:
            rate = high if passing is None or passing < round(high) else passing * 2
        elif passing is None:
            rate = low if round(low) < failing else failing / 4
        else:
            rate = math.sqrt(passing * failing)
        rate = max(floor, 1, round(rate))
        if not unconfirmed and rate in (passing, failing):  # whole msgs/s: the bracket cannot shrink further
            stopped = "floor" if rate == failing and rate <= floor else "precision"
            break
        passed = bool(measure(rate))
        steps.append((rate, passed))
        results.append((rate, passed))
    failed_below = sorted(rate for rate, passed in verdicts.items() if not passed and passing is not None and rate < passing)
    return {"interval": [passing, failing], "failed_below": failed_below, "steps": steps, "stopped": stopped}


def capacity_cell(cell, plan_id):
    """The closed-loop run that measures a plan cell's capacity at its connections."""
    return dict(cell, mode="closed", rate=None, slo=None, pipeline=1,
                knee={"role": "capacity", "plan": plan_id})


def open_cell(cell, plan_id, role, rate, capacity, **more):
    """An open-loop run of a plan at a concrete rate, with the link to its capacity record."""
    link = {"role": role, "plan": plan_id, "capacity_of": capacity["id"],
            "capacity_msgs_per_s": capacity["msgs_per_s"], "fraction": round(rate / capacity["msgs_per_s"], 4)}
    return dict(cell, rate=rate, slo=None, knee=dict(link, **more))


def closed_loop_rate(record):
    if record.get("status") != "ok":
        return None
    rate = ((record.get("loadgen") or {}).get("throughput") or {}).get("msgs_per_s")
    return rate if _number(rate) and rate > 0 else None


class PlanState:
    """What the repetitions of one plan share: the sweep's rates come from the first
    repetition's capacity, so that every repetition measures the same rates and the figures
    take medians across them. Each repetition still measures (and records) its capacity."""

    def __init__(self):
        self.sweep_capacity = None  # {"id", "msgs_per_s"} of the first usable capacity run


def run_plan(cell, plan_id, suffix, run, state, clock):
    """One repetition of a plan. `run(cell, record_id) -> record` measures and records one
    run; `suffix` ends every record id ("_r0", "_B_r1"); `clock()` is monotonic seconds.
    Returns the plan's summary for the manifest."""
    summary = {"plan": plan_id, "engine": cell["engine"], "server_args": cell.get("server_args") or "",
               "connections": cell["connections"], "repetition": cell.get("repetition", 0)}
    capacity_id = f"{plan_id}_capacity{suffix}"
    capacity_record = run(capacity_cell(cell, plan_id), capacity_id)
    measured = closed_loop_rate(capacity_record)
    summary["capacity"] = {"id": capacity_id, "msgs_per_s": measured,
                           "valid": (capacity_record.get("loadgen") or {}).get("valid") is not False}
    if measured is None:
        summary["skipped"] = "the closed-loop capacity run failed: " + capacity_record.get("reason", "no rate")
        return summary
    if state.sweep_capacity is None:
        state.sweep_capacity = {"id": capacity_id, "msgs_per_s": measured}
    base = state.sweep_capacity
    summary["sweep_capacity_of"] = base["id"]
    slo = slo_settings(cell["slo"]) if cell.get("slo") is not None else None
    known, sweep_ids = [], []
    for fraction, rate in sweep_rates(base["msgs_per_s"], sweep_settings(cell["rate"])):
        record_id = f"{plan_id}_f{fraction:g}{suffix}"
        record = run(open_cell(cell, plan_id, "sweep", rate, base), record_id)
        sweep_ids.append(record_id)
        if slo is not None:
            known.append((rate, slo_verdict(record, slo)[0]))
    summary["sweep"] = sweep_ids
    if slo is not None:
        summary["slo"] = _search(cell, plan_id, suffix, run, slo, base, known, clock)
    return summary


def _search(cell, plan_id, suffix, run, slo, capacity, known, clock):
    started = clock()
    steps = []
    # Each step costs about what the last one did (the first: the cell's times and a margin).
    expected = cell["warmup_s"] + cell["duration_s"] + cell["timeout_s"] + 1.0

    def measure(rate):
        nonlocal expected
        record_id = f"{plan_id}_slo{len(steps) + 1}{suffix}"
        step_started = clock()
        record = run(open_cell(cell, plan_id, "slo-step", rate, capacity, step=len(steps) + 1,
                               slo={"percentile": slo["percentile"], "max_us": slo["max_us"]}), record_id)
        expected = clock() - step_started
        passed, why = slo_verdict(record, slo)
        steps.append({"id": record_id, "rate": rate, "passed": passed, "why": why})
        return passed

    sweep = sweep_settings(cell["rate"])
    floor = math.ceil(min_answered(slo["percentile"]) / cell["duration_s"])
    found = search_slo_capacity(measure, sweep["from"] * capacity["msgs_per_s"], sweep["to"] * capacity["msgs_per_s"],
                                slo["steps"], known=known, floor=floor,
                                time_left=lambda: clock() - started + expected <= slo["max_s"])
    return {"percentile": slo["percentile"], "max_us": slo["max_us"], "interval_msgs_per_s": found["interval"],
            "failed_below_msgs_per_s": found["failed_below"], "floor_msgs_per_s": floor,
            "stopped": found["stopped"], "seeded_from_sweep": [[rate, passed] for rate, passed in known],
            "steps": steps, "seconds": round(clock() - started, 2)}
