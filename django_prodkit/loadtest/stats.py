"""Samples of a run and what is computed from them: totals, exact percentiles, a timeline and a histogram."""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

HISTOGRAM_BINS = 30
PERCENTILES = (50.0, 90.0, 95.0, 99.0)


class Recorder:
    """Every sample of one phase of a run: latency and end time of each response, counts of each error kind."""

    __slots__ = (
        "bytes_received",
        "ends",
        "error_ends",
        "errors",
        "failure_ends",
        "finished",
        "latencies",
        "started",
        "statuses",
    )

    def __init__(self) -> None:
        self.latencies: array[float] = array("d")
        self.ends: array[float] = array("d")
        # End times of responses with a failing status, and of requests that got no response at all.
        self.failure_ends: array[float] = array("d")
        self.error_ends: array[float] = array("d")
        self.statuses: dict[int, int] = {}
        self.errors: dict[str, int] = {}
        self.bytes_received = 0
        self.started = time.perf_counter()
        self.finished: float | None = None

    @property
    def completed(self) -> int:
        """Requests finished so far, with a response or an error."""
        return len(self.latencies) + sum(self.errors.values())

    def record_error(self, kind: str, now: float) -> None:
        """A request that got no response: timeout, refused or reset connection, invalid response..."""
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.error_ends.append(now)


def percentile(ordered: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile of already sorted samples: always a latency that really occurred."""
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class LatencyStats:
    """Latency figures in milliseconds, exact over every sample."""

    min: float
    max: float
    avg: float
    median: float
    p90: float
    p95: float
    p99: float

    @classmethod
    def of(cls, ordered_ms: Sequence[float]) -> LatencyStats:
        """The figures of sorted latencies in milliseconds."""
        p50, p90, p95, p99 = (percentile(ordered_ms, p) for p in PERCENTILES)
        return cls(ordered_ms[0], ordered_ms[-1], math.fsum(ordered_ms) / len(ordered_ms), p50, p90, p95, p99)


@dataclass(frozen=True)
class TimelinePoint:
    """One second of the run."""

    second: int
    requests: int
    failed: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class Summary:
    """Everything a report shows about a finished (or interrupted) run."""

    requests: int
    successful: int
    failed: int
    duration: float
    bytes_received: int
    latency: LatencyStats | None
    status_codes: dict[int, int]
    errors: dict[str, int]
    timeline: list[TimelinePoint] = field(default_factory=list)
    histogram: list[tuple[float, float, int]] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        """Successful requests in percent of all requests (0 when there were none)."""
        return 100.0 * self.successful / self.requests if self.requests else 0.0

    @property
    def requests_per_second(self) -> float:
        """All finished requests divided by the measured time."""
        return self.requests / self.duration if self.duration > 0 else 0.0


def _per_second(ends: Sequence[float], start: float, seconds: int) -> list[int]:
    counts = [0] * seconds
    for end in ends:
        counts[min(int(end - start), seconds - 1)] += 1
    return counts


def _timeline(recorder: Recorder, latencies_ms: Sequence[float]) -> list[TimelinePoint]:
    start = recorder.started
    last = max([*recorder.ends[-1:], *recorder.error_ends[-1:], start])
    seconds = int(last - start) + 1
    per_second: list[list[float]] = [[] for _ in range(seconds)]
    for end, latency in zip(recorder.ends, latencies_ms, strict=True):
        per_second[min(int(end - start), seconds - 1)].append(latency)
    errors = _per_second(recorder.error_ends, start, seconds)
    failures = _per_second(recorder.failure_ends, start, seconds)
    points = []
    for second, samples in enumerate(per_second):
        samples.sort()
        p50, p95, p99 = (percentile(samples, p) if samples else None for p in (50.0, 95.0, 99.0))
        failed = errors[second] + failures[second]
        points.append(TimelinePoint(second, len(samples) + errors[second], failed, p50, p95, p99))
    return points


def _histogram(ordered_ms: Sequence[float]) -> list[tuple[float, float, int]]:
    """Geometric bins from the fastest to the slowest response: a long tail stays visible next to the bulk."""
    low, high = max(ordered_ms[0], 0.001), max(ordered_ms[-1], 0.001)
    if high <= low * 1.0001:
        return [(ordered_ms[0], ordered_ms[-1], len(ordered_ms))]
    ratio = (high / low) ** (1.0 / HISTOGRAM_BINS)
    edges = [low * ratio**i for i in range(HISTOGRAM_BINS + 1)]
    counts = [0] * HISTOGRAM_BINS
    for value in ordered_ms:
        index = int(math.log(max(value, low) / low, ratio)) if value > low else 0
        counts[min(index, HISTOGRAM_BINS - 1)] += 1
    return [(edges[i], edges[i + 1], counts[i]) for i in range(HISTOGRAM_BINS)]


def summarize(recorder: Recorder, success_statuses: Collection[int]) -> Summary:
    """Compute the summary of a phase from all its samples."""
    finished = recorder.finished if recorder.finished is not None else time.perf_counter()
    latencies_ms = [latency * 1000.0 for latency in recorder.latencies]
    ordered = sorted(latencies_ms)
    successful = sum(count for status, count in recorder.statuses.items() if status in success_statuses)
    statuses = sorted(recorder.statuses.items())
    errors = {f"http_{status}": count for status, count in statuses if status not in success_statuses}
    errors.update(sorted(recorder.errors.items()))
    requests = len(ordered) + sum(recorder.errors.values())
    return Summary(
        requests=requests,
        successful=successful,
        failed=requests - successful,
        duration=max(finished - recorder.started, 0.0),
        bytes_received=recorder.bytes_received,
        latency=LatencyStats.of(ordered) if ordered else None,
        status_codes=dict(sorted(recorder.statuses.items())),
        errors=errors,
        timeline=_timeline(recorder, latencies_ms) if requests else [],
        histogram=_histogram(ordered) if ordered else [],
    )
