"""A latency histogram with fixed bucket edges, so histograms of separate runs merge exactly, bucket by bucket.

Latencies are whole microseconds. Below 128 us every microsecond has its own bucket; above, each power of two is
split into 64 buckets, so a bucket is at most 1/64 (1.6 %) wider than its lower edge. The edges depend on nothing
but the bucket index: two processes, two machines or two segments of a run add their counts index by index.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

SUB_BUCKETS = 64
_EXACT_BELOW = 2 * SUB_BUCKETS
# Beyond ~19 hours a latency is not a latency; the index stays small and bounded.
MAX_US = 1 << 36
# A count no run reaches (2**53: still exact as a float), so a hostile report cannot make figures overflow.
MAX_COUNT = 1 << 53


def bucket_of(us: int) -> int:
    """The index of the bucket that holds a latency of ``us`` microseconds."""
    us = min(max(us, 0), MAX_US)
    if us < _EXACT_BELOW:
        return us
    shift = us.bit_length() - 7
    return shift * SUB_BUCKETS + (us >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """The lower (inclusive) and upper (exclusive) edge of a bucket, in microseconds."""
    if index < _EXACT_BELOW:
        return index, index + 1
    shift = index // SUB_BUCKETS - 1
    mantissa = index - shift * SUB_BUCKETS
    return mantissa << shift, (mantissa + 1) << shift


class Histogram:
    """Counts per bucket (sparse), with exact count, sum, min and max beside them."""

    __slots__ = ("buckets", "count", "max_us", "min_us", "sum_us")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.sum_us = 0
        self.min_us = 0
        self.max_us = 0

    def add(self, us: int, times: int = 1) -> None:
        """Count ``times`` latencies of ``us`` microseconds."""
        index = bucket_of(us)
        self.buckets[index] = self.buckets.get(index, 0) + times
        self.min_us = us if self.count == 0 else min(self.min_us, us)
        self.max_us = max(self.max_us, us)
        self.count += times
        self.sum_us += us * times

    def merge(self, other: Histogram) -> None:
        """Add another histogram's counts to this one."""
        if other.count == 0:
            return
        for index, count in other.buckets.items():
            self.buckets[index] = self.buckets.get(index, 0) + count
        self.min_us = other.min_us if self.count == 0 else min(self.min_us, other.min_us)
        self.max_us = max(self.max_us, other.max_us)
        self.count += other.count
        self.sum_us += other.sum_us

    def percentile(self, pct: float) -> float:
        """The nearest-rank percentile in ms: the middle of its bucket, kept within the exact min and max."""
        rank = nearest_rank(pct, self.count)
        if rank >= self.count:
            return self.max_us / 1000.0
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                low, high = bucket_bounds(index)
                middle = low if high - low == 1 else (low + high) / 2
                return min(max(middle, self.min_us), self.max_us) / 1000.0
        return self.max_us / 1000.0

    def bins(self, count: int) -> list[tuple[float, float, int]]:
        """About ``count`` geometric bins (from, to in ms, responses) from the fastest to the slowest, for charts."""
        if not self.count:
            return []
        low, high = max(self.min_us, 1), max(self.max_us, 1)
        if high <= low:
            return [(self.min_us / 1000.0, self.max_us / 1000.0, self.count)]
        ratio = (high / low) ** (1.0 / count)
        counts = [0] * count
        for index, n in self.buckets.items():
            edge = max(bucket_bounds(index)[0], low)
            position = int(math.log(edge / low, ratio)) if edge > low else 0
            counts[min(position, count - 1)] += n
        return [(low * ratio**i / 1000.0, low * ratio ** (i + 1) / 1000.0, counts[i]) for i in range(count)]

    def to_json(self) -> dict[str, object]:
        """The histogram as JSON data: enough to merge it exactly with another."""
        return {
            "unit": "us",
            "sub_buckets": SUB_BUCKETS,
            "count": self.count,
            "sum": self.sum_us,
            "min": self.min_us,
            "max": self.max_us,
            "buckets": [[index, self.buckets[index]] for index in sorted(self.buckets)],
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Histogram:
        """Read what :meth:`to_json` wrote; ValueError when it is not such a histogram."""
        if data.get("unit") != "us" or data.get("sub_buckets") != SUB_BUCKETS:
            raise ValueError("histogram with other units or buckets")
        histogram = cls()
        pairs = data.get("buckets")
        if not isinstance(pairs, list):
            raise ValueError("histogram without buckets")
        for index, count in _pairs(pairs):
            if index > MAX_INDEX or index in histogram.buckets:
                raise ValueError(f"bucket {index}: not a bucket of this histogram, or given twice")
            histogram.buckets[index] = count
        histogram.count = _int(data.get("count"))
        histogram.sum_us = _int(data.get("sum"), MAX_COUNT * MAX_US)
        histogram.min_us = _int(data.get("min"), MAX_US)
        histogram.max_us = _int(data.get("max"), MAX_US)
        if sum(histogram.buckets.values()) != histogram.count:
            raise ValueError("histogram buckets do not add up to its count")
        if histogram.count and not histogram.min_us <= histogram.max_us:
            raise ValueError("histogram minimum above its maximum")
        return histogram

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]


MAX_INDEX = bucket_of(MAX_US)


def nearest_rank(pct: float, count: int) -> int:
    """The 1-based rank of the ``pct`` percentile of ``count`` values, computed exactly (no float rounding:
    p99.9 of 1,000 values is the 999th, not the 1,000th)."""
    return max(1, math.ceil(Fraction(repr(float(pct))) * count / 100))


def _int(value: object, limit: int = MAX_COUNT) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise ValueError(f"expected a count between 0 and {limit}, got {str(value)[:40]}")
    return value


def _pairs(items: Iterable[object]) -> Iterable[tuple[int, int]]:
    for item in items:
        if not isinstance(item, list) or len(item) != 2:
            raise ValueError(f"expected [bucket, count], got {item!r}")
        yield _int(item[0]), _int(item[1])
