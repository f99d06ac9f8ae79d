"""Per-interval aggregation of the requests the metrics count, and the bounded buffer of unsent intervals."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

#: Status classes published as their own count metric (``Status2xx`` ...); others count only in ``RequestCount``.
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
#: Below a microsecond a response time is published as 0 (CloudWatch rejects values under about 8.5e-109).
MIN_DURATION_MS = 0.001

SeriesKey = tuple[str, str]  # (route, method)
#: The outcomes of a task run published as their own count metric (``TaskFailed`` ...) beside ``TaskCount``.
TASK_OUTCOMES = ("succeeded", "failed", "retried")


def round_duration(duration_ms: float) -> float:
    """Round to two significant digits (at most 5 % off) so a series holds a bounded set of distinct values."""
    if duration_ms < MIN_DURATION_MS:
        return 0.0
    return float(f"{duration_ms:.2g}")


def status_class(status: int) -> str | None:
    """``"2xx"`` for 200-299 and so on; ``None`` for a status outside 200-599."""
    if 200 <= status < 600:
        return STATUS_CLASSES[status // 100 - 2]
    return None


@dataclass
class SeriesStats:
    """What one endpoint and method saw during one flush interval."""

    count: int = 0
    statuses: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUS_CLASSES, 0))
    #: rounded response time in ms -> how many requests took it
    durations: dict[float, int] = field(default_factory=dict)

    def merge(self, other: SeriesStats) -> None:
        """Add ``other``'s counts to this one."""
        self.count += other.count
        for name, seen in other.statuses.items():
            self.statuses[name] += seen
        for value, count in other.durations.items():
            self.durations[value] = self.durations.get(value, 0) + count


@dataclass
class TaskStats:
    """What one task name saw during one flush interval: runs, outcomes and rounded durations."""

    count: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TASK_OUTCOMES, 0))
    durations: dict[float, int] = field(default_factory=dict)


@dataclass
class Interval:
    """One closed flush interval: its end time, one :class:`SeriesStats` per endpoint and method, one
    :class:`TaskStats` per task name."""

    timestamp: float
    series: dict[SeriesKey, SeriesStats]
    #: how many of this interval's PutMetricData calls already succeeded (so a resend never counts twice)
    sent_chunks: int = 0
    tasks: dict[str, TaskStats] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        """The number of requests (and task runs) this interval counted."""
        return sum(stats.count for stats in self.series.values()) + sum(t.count for t in self.tasks.values())

    @property
    def size(self) -> int:
        """Its series in the buffer: endpoints and methods, and task names."""
        return len(self.series) + len(self.tasks)

    def total(self) -> SeriesStats:
        """All endpoints together, for the service-level metrics."""
        total = SeriesStats()
        for stats in self.series.values():
            total.merge(stats)
        return total


@dataclass(frozen=True)
class Overflow:
    """What the buffer had to drop since the last report."""

    requests: int
    series: int
    intervals: int


class Aggregator:
    """Thread-safe: the request path calls :meth:`add`, the publisher thread :meth:`rotate` and :meth:`pending`.

    Closed intervals wait in a buffer of at most ``buffer_size`` series (one series is one endpoint and method in
    one interval) until the publisher reports them sent; when it is full the oldest intervals are dropped and
    counted, never silently.
    """

    def __init__(self, buffer_size: int) -> None:
        self.buffer_size = buffer_size
        self._lock = threading.Lock()
        self._current: dict[SeriesKey, SeriesStats] = {}
        self._current_tasks: dict[str, TaskStats] = {}
        self._pending: deque[Interval] = deque()
        self._pending_series = 0
        self._dropped_requests = 0
        self._dropped_series = 0
        self._dropped_intervals = 0

    def add(self, method: str, route: str, status: int, duration_ms: float) -> None:
        """Count one request (called on the request path: no I/O, one short lock)."""
        with self._lock:
            stats = self._current.get((route, method))
            if stats is None:
                stats = self._current[(route, method)] = SeriesStats()
            stats.count += 1
            klass = status_class(status)
            if klass is not None:
                stats.statuses[klass] += 1
            # A non-finite duration cannot be published (CloudWatch rejects NaN and infinity); the request still counts.
            if math.isfinite(duration_ms):
                value = round_duration(duration_ms)
                stats.durations[value] = stats.durations.get(value, 0) + 1

    def add_task(self, task: str, outcome: str, duration_ms: float) -> None:
        """Count one task run (in the worker, after the task: no I/O, one short lock)."""
        with self._lock:
            stats = self._current_tasks.get(task)
            if stats is None:
                stats = self._current_tasks[task] = TaskStats()
            stats.count += 1
            if outcome in stats.outcomes:
                stats.outcomes[outcome] += 1
            if math.isfinite(duration_ms):
                value = round_duration(duration_ms)
                stats.durations[value] = stats.durations.get(value, 0) + 1

    def rotate(self, now: float | None = None) -> Interval | None:
        """Close the current interval into the buffer (nothing when it saw no request or task) and return it."""
        with self._lock:
            if not self._current and not self._current_tasks:
                return None
            interval = Interval(time.time() if now is None else now, self._current, tasks=self._current_tasks)
            self._current = {}
            self._current_tasks = {}
            self._pending.append(interval)
            self._pending_series += interval.size
            while self._pending_series > self.buffer_size and self._pending:
                dropped = self._pending.popleft()
                self._pending_series -= dropped.size
                self._dropped_requests += dropped.requests
                self._dropped_series += dropped.size
                self._dropped_intervals += 1
            return interval

    def pending(self) -> list[Interval]:
        """The buffered intervals, oldest first (a copy of the list; the intervals themselves are shared)."""
        with self._lock:
            return list(self._pending)

    def done(self, interval: Interval) -> None:
        """Forget an interval the publisher has sent completely (a no-op if overflow already dropped it)."""
        with self._lock:
            try:
                self._pending.remove(interval)
            except ValueError:
                return
            self._pending_series -= interval.size

    def discard(self, interval: Interval) -> int:
        """Drop an interval that can never be sent and count it as overflow; return its request count."""
        with self._lock:
            try:
                self._pending.remove(interval)
            except ValueError:
                return 0
            self._pending_series -= interval.size
            self._dropped_requests += interval.requests
            self._dropped_series += interval.size
            self._dropped_intervals += 1
            return interval.requests

    def take_overflow(self) -> Overflow | None:
        """What was dropped since the last call (``None`` when nothing was), resetting the tally."""
        with self._lock:
            if not self._dropped_intervals:
                return None
            overflow = Overflow(self._dropped_requests, self._dropped_series, self._dropped_intervals)
            self._dropped_requests = self._dropped_series = self._dropped_intervals = 0
            return overflow

    @property
    def pending_series(self) -> int:
        """How many series wait in the buffer."""
        with self._lock:
            return self._pending_series
