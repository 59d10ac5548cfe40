"""Verdicts: per cell and metric, is the candidate worse than the baseline?

A regression needs all three: a change beyond the metric's threshold, a Mann-Whitney U test
rejecting "same distribution" at alpha, and a bootstrap interval of the ratio of medians
that excludes 1 on the worse side. A metric passes only when the interval also rules out a
regression as large as the threshold; otherwise the run could not tell, and says so."""
import statistics

from . import stats
from .metrics import METRICS

MIN_DETERMINISTIC_REPS = 3
VERDICT_ORDER = ["regression", "void", "inconclusive", "improvement", "pass"]


def _change(metric, base, cand):
    if base is None or cand is None:
        return None
    if metric.effect == "difference":
        return cand - base
    return cand / base - 1.0 if base > 0 else None


def detectable_change(metric, ci, observed_ratio, threshold):
    """The smallest worsening this run could have called: the threshold, or the distance from
    the observed effect to the far end of its interval, whichever is larger (a shift by that
    much moves the interval off 1)."""
    if ci is None or observed_ratio is None:
        return None
    low, high = ci
    if metric.effect == "difference":
        reach = (high - observed_ratio) if metric.sign > 0 else (observed_ratio - low)
        return max(threshold, reach)
    if metric.sign > 0:
        reach = observed_ratio / low - 1.0 if low > 0 else None
    else:
        reach = 1.0 - observed_ratio / high if high > 0 else None
    return None if reach is None else max(threshold, reach)


def _excludes(metric, ci, worse):
    """Does the interval lie entirely on the worse (or better) side of no change?"""
    neutral = 0.0 if metric.effect == "difference" else 1.0
    low, high = ci
    above, below = low > neutral, high < neutral
    if worse:
        return above if metric.sign > 0 else below
    return below if metric.sign > 0 else above


def _rules_out(metric, ci, threshold):
    """Does the interval exclude a worsening as large as the threshold?"""
    neutral = 0.0 if metric.effect == "difference" else 1.0
    low, high = ci
    return high < neutral + threshold if metric.sign > 0 else low > neutral - threshold


def judge_metric(metric, threshold, base, cand, settings, base_head=None, cand_head=None):
    """One metric of one cell; base and cand are the repetitions' values."""
    base_head = statistics.median(base) if base_head is None else base_head
    cand_head = statistics.median(cand) if cand_head is None else cand_head
    change = _change(metric, base_head, cand_head)
    out = {"metric": metric.name, "title": metric.title, "unit": metric.unit, "better": metric.better,
           "rule": metric.rule, "threshold": threshold, "baseline": base_head, "candidate": cand_head,
           "change": change, "change_kind": metric.effect, "n_baseline": len(base), "n_candidate": len(cand),
           "p_value": None, "test": None, "ci": None, "smallest_possible_p": stats.smallest_p(len(base), len(cand)),
           "detectable_change": None, "verdict": "inconclusive", "note": ""}
    if len(set(base) | set(cand)) > 1:
        u = stats.mann_whitney_u(base, cand)
        out["p_value"], out["test"] = u.p_value, u.method
    else:
        out["p_value"], out["test"] = 1.0, "identical"
    worse = change is not None and change * metric.sign > threshold
    better = change is not None and -change * metric.sign > threshold

    if metric.rule == "deterministic":
        if min(len(base), len(cand)) < MIN_DETERMINISTIC_REPS:
            out["note"] = f"fewer than {MIN_DETERMINISTIC_REPS} repetitions a side"
            return out
        separated_up, separated_down = min(cand) > max(base), max(cand) < min(base)
        if worse and (separated_up if metric.sign > 0 else separated_down):
            out["verdict"], out["note"] = "regression", "every candidate repetition beyond every baseline one"
        elif better and (separated_down if metric.sign > 0 else separated_up):
            out["verdict"] = "improvement"
        else:
            out["verdict"] = "pass"
        out["detectable_change"] = threshold
        return out

    ci = stats.bootstrap_ci(base, cand, metric.effect, settings.resamples, 1.0 - settings.alpha, settings.seed)
    out["ci"] = list(ci) if ci else None
    observed = None
    if metric.effect == "difference":
        observed = statistics.median(cand) - statistics.median(base)
    elif statistics.median(base) > 0:
        observed = statistics.median(cand) / statistics.median(base)
    if out["smallest_possible_p"] >= settings.alpha:
        needed = stats.repetitions_needed(settings.alpha)
        out["note"] = (f"{len(base)} vs {len(cand)} repetitions: the U test cannot reach p < {settings.alpha:g} "
                       f"(smallest possible p = {out['smallest_possible_p']:.3g}); run at least {needed} a side")
        return out
    out["detectable_change"] = detectable_change(metric, ci, observed, threshold)
    if ci is None:
        out["note"] = "the baseline's median is zero: no ratio"
        return out
    significant = out["p_value"] < settings.alpha
    if worse and significant and _excludes(metric, ci, worse=True):
        out["verdict"] = "regression"
    elif better and significant and _excludes(metric, ci, worse=False):
        out["verdict"] = "improvement"
    elif _rules_out(metric, ci, threshold):
        out["verdict"] = "pass"
    else:
        out["note"] = "too noisy to rule out a change of the threshold's size"
    return out


def compare_cell(base_cell, cand_cell, settings, aa_cell=None):
    result = {"id": base_cell.label, "cell": {k: v for k, v in base_cell.cell.items() if k != "repetition"
                                              and k != "side"},
              "status": "compared", "void_reasons": [],
              "repetitions": {"baseline": len(base_cell.reps), "candidate": len(cand_cell.reps)}, "metrics": []}
    if aa_cell is not None:
        result["repetitions"]["aa"] = len(aa_cell.reps)
    if base_cell.skipped or cand_cell.skipped:
        result["status"], result["skipped_reason"] = "skipped", base_cell.skipped or cand_cell.skipped
        return result
    for role, cell in (("baseline", base_cell), ("candidate", cand_cell), ("A/A", aa_cell)):
        if cell is None:
            continue
        for reason in cell.void_reasons:
            result["void_reasons"].append(f"{role}: {reason}")
        if not cell.reps and not cell.void_reasons:
            result["void_reasons"].append(f"{role}: no repetition")
    if result["void_reasons"]:
        result["status"] = "void"
        return result
    for metric in METRICS:
        base, cand = base_cell.values(metric.name), cand_cell.values(metric.name)
        if not base or not cand:
            continue  # not measured here (a load generator file has no server counters)
        threshold = settings.thresholds[metric.name]
        judged = judge_metric(metric, threshold, base, cand, settings,
                              base_cell.headline(metric.name), cand_cell.headline(metric.name))
        judged["gate"] = metric.name in settings.gate
        judged["aa"] = None
        aa = aa_cell.values(metric.name) if aa_cell is not None else []
        if aa:
            noise = judge_metric(metric, threshold, base, aa, settings,
                                 base_cell.headline(metric.name), aa_cell.headline(metric.name))
            judged["aa"] = {"change": noise["change"], "ci": noise["ci"], "p_value": noise["p_value"],
                            "verdict": noise["verdict"], "detectable_change": noise["detectable_change"]}
            # Two runs of one build show what this job can resolve: a change smaller than their
            # spread could not have been told from noise, whatever the A/B data happened to show.
            judged["detectable_change"] = noise["detectable_change"]
        result["metrics"].append(judged)
    return result


def overall(cells):
    """(verdict, exit code): regression 1 beats inconclusive 3 beats pass 0."""
    gating = [m for c in cells for m in c["metrics"] if m["gate"]]
    if any(m["verdict"] == "regression" for m in gating):
        return "regression", 1
    if any(c["status"] == "void" for c in cells) or any(m["verdict"] == "inconclusive" for m in gating):
        return "inconclusive", 3
    return "pass", 0
