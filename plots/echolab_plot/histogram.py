"""Decoder of the load generator's compact histogram JSON ("format": "echolab.histogram").

Mirrors loadgen/histogram.cc exactly (same bucket layout, same percentile rank rule, same
percentile iteration as write_hgrm/percentile_spectrum), so a percentile computed here equals
the one the C++ wrote into the result's latency summary. Pure standard library: the report's
numbers must not depend on matplotlib or numpy being installed.
"""
import math

FORMAT = "echolab.histogram"
VERSION = 1
MAX_SIGNIFICANT_DIGITS = 5


class HistogramFormatError(ValueError):
    pass


def _floor_log2(value):
    return value.bit_length() - 1


def _ceil_log2(value):
    return 0 if value <= 1 else (value - 1).bit_length()


class Layout:
    """Bucket geometry for (lowest, highest, significant_digits); see loadgen/histogram.h."""

    def __init__(self, lowest, highest, significant_digits):
        if lowest < 1 or highest // 2 < lowest or not 0 <= significant_digits <= MAX_SIGNIFICANT_DIGITS:
            raise HistogramFormatError(
                f"bad layout lowest={lowest} highest={highest} significant_digits={significant_digits}")
        self.lowest, self.highest, self.significant_digits = lowest, highest, significant_digits
        sub_bucket_count_magnitude = _ceil_log2(2 * 10 ** significant_digits)
        self.sub_bucket_half_magnitude = sub_bucket_count_magnitude - 1
        self.sub_bucket_count = 1 << sub_bucket_count_magnitude
        self.half_count = self.sub_bucket_count // 2
        # The finest sub-bucket is as wide as possible while `lowest` keeps full precision.
        self.unit_magnitude = max(0, _floor_log2(lowest) - self.sub_bucket_half_magnitude)
        smallest_untrackable = self.sub_bucket_count << self.unit_magnitude
        buckets = 1
        while smallest_untrackable <= highest:
            smallest_untrackable <<= 1
            buckets += 1
        self.bucket_count = buckets
        self.counts_size = (buckets + 1) * self.half_count

    def key(self):
        return (self.lowest, self.highest, self.significant_digits)

    def value_from_index(self, index):
        """Lowest value of the bucket at `index`."""
        bucket = (index >> self.sub_bucket_half_magnitude) - 1
        sub_bucket = (index & (self.half_count - 1)) + self.half_count
        if bucket < 0:  # the first bucket uses all its sub-buckets, from 0
            sub_bucket -= self.half_count
            bucket = 0
        return sub_bucket << (bucket + self.unit_magnitude)

    def bucket_width(self, index):
        bucket = max(0, (index >> self.sub_bucket_half_magnitude) - 1)
        return 1 << (bucket + self.unit_magnitude)

    def highest_equivalent(self, index):
        return self.value_from_index(index) + self.bucket_width(index) - 1


def _integer(document, key):
    value = document.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise HistogramFormatError(f'"{key}" must be an integer, got {value!r}')
    return value


class Histogram:
    """Counts by bucket index (sparse), plus the exact count/min/max the C++ kept."""

    def __init__(self, layout, counts=None, below_range=0, above_range=0, minimum=0, maximum=0):
        self.layout = layout
        self.counts = dict(counts or {})  # bucket index -> count, zero counts omitted
        self.below_range, self.above_range = below_range, above_range
        self.min, self.max = minimum, maximum

    @property
    def count(self):
        return sum(self.counts.values())

    @classmethod
    def from_json(cls, document):
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise HistogramFormatError(f'not an {FORMAT} object')
        if _integer(document, "version") != VERSION:
            raise HistogramFormatError(f'unsupported version {document.get("version")!r}')
        layout = Layout(_integer(document, "lowest"), _integer(document, "highest"),
                        _integer(document, "significant_digits"))
        counts, next_free = {}, 0
        runs = document.get("runs")
        if not isinstance(runs, list):
            raise HistogramFormatError('"runs" must be a list')
        for number, run in enumerate(runs):
            if not isinstance(run, list) or len(run) < 2:
                raise HistogramFormatError(f"runs[{number}] must be [first_index, count, ...]")
            start = run[0]
            if not isinstance(start, int) or start < next_free or start + len(run) - 1 > layout.counts_size:
                raise HistogramFormatError(f"runs[{number}] is out of range or overlaps the previous run")
            for offset, value in enumerate(run[1:]):
                if not isinstance(value, int) or value < 0:
                    raise HistogramFormatError(f"runs[{number}] holds a bad count {value!r}")
                if value:
                    counts[start + offset] = value
            next_free = start + len(run) - 1
        histogram = cls(layout, counts, _integer(document, "below_range"), _integer(document, "above_range"),
                        _integer(document, "min"), _integer(document, "max"))
        if histogram.count != _integer(document, "count"):
            raise HistogramFormatError(f'"count" {document["count"]} differs from the sum of the runs '
                                       f"{histogram.count}")
        return histogram

    def merged(self, other):
        """Exact sum (as Histogram::merge); the layouts must be the same."""
        if self.layout.key() != other.layout.key():
            raise HistogramFormatError(f"cannot merge layouts {self.layout.key()} and {other.layout.key()}")
        counts = dict(self.counts)
        for index, value in other.counts.items():
            counts[index] = counts.get(index, 0) + value
        nonempty = [h for h in (self, other) if h.counts]
        return Histogram(self.layout, counts, self.below_range + other.below_range,
                         self.above_range + other.above_range,
                         min((h.min for h in nonempty), default=0), max((h.max for h in nonempty), default=0))

    def value_at_percentile(self, percentile):
        """As Histogram::value_at_percentile: the highest-equivalent value of the bucket holding
        the sample of rank max(1, ceil(p/100 * count)); for p == 0 its lowest-equivalent value."""
        total = self.count
        if total == 0:
            return 0
        if math.isnan(percentile):
            percentile = 0.0
        # One ulp down, as the C++ (and HdrHistogram): 99.9% of 1000 stays rank 999.
        requested = min(max(math.nextafter(percentile, -math.inf), 0.0), 100.0)
        fp_rank = requested / 100.0 * total
        rank = total if fp_rank >= total else math.ceil(fp_rank)
        rank = max(rank, 1)
        cumulative = 0
        for index in sorted(self.counts):
            cumulative += self.counts[index]
            if cumulative >= rank:
                low = self.layout.value_from_index(index)
                return low if percentile <= 0.0 else low + self.layout.bucket_width(index) - 1
        return 0

    def mean(self):
        """From bucket mid-points, as Histogram::mean (so it matches the C++ summary)."""
        total = self.count
        if total == 0:
            return 0.0
        weighted = 0.0
        for index in sorted(self.counts):
            middle = self.layout.value_from_index(index) + self.layout.bucket_width(index) // 2
            weighted += float(middle) * float(self.counts[index])
        return weighted / total

    def percentile_spectrum(self, ticks_per_half_distance=5):
        """[(percentile 0..100, value)] at HdrHistogram's percentile ticks, as the C++
        percentile_spectrum(): ever finer steps towards 100 %, closed by a 100 % row."""
        if ticks_per_half_distance < 1:
            raise ValueError("ticks_per_half_distance must be >= 1")
        rows, total = [], self.count
        if total == 0:
            return rows

        def next_level(level):
            if not level < 100.0:
                return math.inf
            halvings = math.floor(math.log(100.0 / (100.0 - level)) / math.log(2.0)) + 1.0
            return level + 100.0 / (ticks_per_half_distance * 2.0 ** halvings)

        level, cumulative = 0.0, 0
        for index in sorted(self.counts):
            cumulative += self.counts[index]
            value = self.layout.highest_equivalent(index)
            reached = 100.0 * cumulative / total
            if cumulative == total:
                if reached >= level:
                    rows.append((level, value))
                rows.append((100.0, value))
                break
            while reached >= level:
                rows.append((level, value))
                level = next_level(level)
        return rows


def merge_all(histograms):
    """The exact sum of several histograms, or None if there are none."""
    merged = None
    for histogram in histograms:
        merged = histogram if merged is None else merged.merged(histogram)
    return merged
