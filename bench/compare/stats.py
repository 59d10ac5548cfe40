"""The statistics of the regression gate, in pure Python so that the tool runs anywhere a
python3 does: the Mann-Whitney U test and a seeded bootstrap interval for medians.

The U test compares repetitions, not messages: messages of one run share that run's luck
(frequency, neighbours, cache state), so only whole repetitions are independent samples.
"""
import math
import random
import statistics

# Exact enumeration is cheap far beyond this, but the normal approximation is already good
# here, and scipy's own "auto" switches to it much earlier.
EXACT_MAX_TOTAL = 40


class UResult:
    def __init__(self, u1, u2, p_value, method):
        self.u1, self.u2, self.p_value, self.method = u1, u2, p_value, method


def midranks(values):
    """Ranks 1..n with ties given the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def _u_counts(n1, n2):
    """counts[u] = number of orderings of n1 x's and n2 y's with U(x) = u (no ties)."""
    # table[j][u] for the current i: arrangements of i x's and j y's.
    table = [[1] for _ in range(n2 + 1)]  # i = 0: U is 0 whatever j
    for i in range(1, n1 + 1):
        new = [[1]]  # j = 0: U is 0
        for j in range(1, n2 + 1):
            # The largest element is an x (it beats all j y's: U += j) or a y (U unchanged).
            with_x, with_y = table[j], new[j - 1]
            size = i * j + 1
            row = [0] * size
            for u, count in enumerate(with_x):
                row[u + j] += count
            for u, count in enumerate(with_y):
                row[u] += count
            new.append(row)
        table = new
    return table[n2]


def mann_whitney_u(x, y, method="auto"):
    """Two-sided Mann-Whitney U test of x against y, as scipy.stats.mannwhitneyu with
    use_continuity=True: exact when there are no ties and the samples are small, otherwise the
    normal approximation with the tie correction of the variance."""
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one value")
    ranks = midranks(list(x) + list(y))
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2.0
    u2 = n1 * n2 - u1
    has_ties = len(set(x) | set(y)) < n1 + n2
    if method == "auto":
        method = "exact" if not has_ties and n1 + n2 <= EXACT_MAX_TOTAL else "asymptotic"
    big = max(u1, u2)
    if method == "exact":
        counts = _u_counts(n1, n2)
        at_least = sum(counts[int(round(big)):])
        p = 2.0 * at_least / math.comb(n1 + n2, n1)
    else:
        n = n1 + n2
        tie_term = 0
        for value in set(x) | set(y):
            t = sum(1 for v in x if v == value) + sum(1 for v in y if v == value)
            tie_term += t ** 3 - t
        variance = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
        if variance <= 0:
            p = 1.0  # every value equal: nothing tells the samples apart
        else:
            z = (big - n1 * n2 / 2.0 - 0.5) / math.sqrt(variance)
            p = math.erfc(z / math.sqrt(2.0))
    return UResult(u1, u2, min(1.0, p), method)


def smallest_p(n1, n2):
    """The smallest two-sided p the U test can give for these sample sizes (complete
    separation, no ties): below alpha or the test can never reject. n=m=3 gives 0.1."""
    if n1 == 0 or n2 == 0:
        return 1.0
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def repetitions_needed(alpha, limit=50):
    """The smallest n (per side, equal sides) whose smallest_p is below alpha."""
    for n in range(1, limit + 1):
        if smallest_p(n, n) < alpha:
            return n
    return None


def bootstrap_ci(baseline, candidate, effect="ratio", resamples=2000, confidence=0.99, seed=1):
    """Percentile bootstrap interval of median(candidate)/median(baseline) (effect "ratio") or
    median(candidate) - median(baseline) ("difference"), resampling each side's repetitions
    with replacement. Seeded: the same inputs always give the same interval. None when a
    ratio's baseline median can be zero."""
    rng = random.Random(seed)
    estimates = []
    for _ in range(resamples):
        base = statistics.median(rng.choices(baseline, k=len(baseline)))
        cand = statistics.median(rng.choices(candidate, k=len(candidate)))
        if effect == "ratio":
            if base <= 0:
                return None
            estimates.append(cand / base)
        else:
            estimates.append(cand - base)
    estimates.sort()
    tail = (1.0 - confidence) / 2.0
    low = estimates[max(0, int(math.floor(tail * resamples)))]
    high = estimates[min(resamples - 1, int(math.ceil((1.0 - tail) * resamples)) - 1)]
    return low, high
