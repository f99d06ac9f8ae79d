"""The mergeable result of a run: counts and latency histograms per request name and per second.

Everything here adds up exactly: two processes, two segments or two machines give results that
:func:`merge` combines by adding counts and histogram buckets, never by averaging percentiles.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django_prodkit.loadtest.config import MAX_SECONDS, RequestSpec
from django_prodkit.loadtest.histogram import MAX_COUNT, Histogram, bucket_of
from django_prodkit.loadtest.recorder import Recorder

ERROR_DROPPED = "dropped"
# Distinct redirect targets kept per tally: enough to name them, bounded whatever the server sends.
MAX_REDIRECT_TARGETS = 5


def _count_of(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
        raise ValueError(f"expected a count, got {str(value)[:40]}")
    return value


def _status_of(text: str) -> int:
    if not (isinstance(text, str) and len(text) == 3 and text.isdigit() and 100 <= int(text) <= 599):
        raise ValueError(f"expected a status code, got {str(text)[:40]}")
    return int(text)


@dataclass
class Tally:
    """Counts of one request name (or of all of them): finished, successful, by status, by failure kind."""

    requests: int = 0
    successful: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    latency: Histogram = field(default_factory=Histogram)
    # Where 3xx responses pointed (scheme, host and path; no query string), with how many pointed there.
    redirects: dict[str, int] = field(default_factory=dict)

    @property
    def redirected(self) -> int:
        """Responses with a 3xx status."""
        return sum(count for status, count in self.statuses.items() if 300 <= status < 400)

    def add_redirects(self, redirects: dict[str, int]) -> None:
        """Count redirect targets, keeping at most :data:`MAX_REDIRECT_TARGETS` distinct ones."""
        for where, count in redirects.items():
            if where in self.redirects or len(self.redirects) < MAX_REDIRECT_TARGETS:
                self.redirects[where] = self.redirects.get(where, 0) + count

    @property
    def failed(self) -> int:
        """Requests that were not successful, dropped ones included."""
        return self.requests - self.successful

    @property
    def dropped(self) -> int:
        """Open-loop requests that could not be started on their schedule."""
        return self.errors.get(ERROR_DROPPED, 0)

    @property
    def success_rate(self) -> float:
        """Successful requests in percent of all requests (0 when there were none)."""
        return 100.0 * self.successful / self.requests if self.requests else 0.0

    def failures(self) -> dict[str, int]:
        """Failed requests by kind: ``http_<status>`` for a failing status, else the transport error kind."""
        return dict(sorted(self.errors.items()))

    def merge(self, other: Tally) -> None:
        """Add another tally's counts to this one."""
        self.requests += other.requests
        self.successful += other.successful
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        for kind, count in other.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + count
        self.latency.merge(other.latency)
        self.add_redirects(other.redirects)

    def to_json(self) -> dict[str, Any]:
        """The tally as JSON data."""
        return {
            "requests": self.requests,
            "successful": self.successful,
            "status_codes": {str(status): count for status, count in sorted(self.statuses.items())},
            "errors": self.failures(),
            "histogram": self.latency.to_json(),
            "redirects": dict(sorted(self.redirects.items())),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tally:
        """Read what :meth:`to_json` wrote."""
        tally = cls(
            requests=_count_of(data["requests"]),
            successful=_count_of(data["successful"]),
            statuses={_status_of(status): _count_of(count) for status, count in data["status_codes"].items()},
            errors={str(kind): _count_of(count) for kind, count in data["errors"].items()},
            latency=Histogram.from_json(data["histogram"]),
            redirects={str(where): _count_of(count) for where, count in data.get("redirects", {}).items()},
        )
        if tally.successful > tally.requests:
            raise ValueError("more successful requests than requests")
        return tally


@dataclass
class Results:
    """A whole run (or share): overall, per request name, per second of the run."""

    total: Tally = field(default_factory=Tally)
    by_name: dict[str, Tally] = field(default_factory=dict)
    timeline: list[Tally] = field(default_factory=list)
    duration: float = 0.0
    bytes_received: int = 0
    warmup_requests: int = 0
    # Warm-up responses per request name: they reached the server too (``--server-metrics`` counts them).
    warmup_by_name: dict[str, int] = field(default_factory=dict)

    @property
    def requests_per_second(self) -> float:
        """All finished requests divided by the measured time."""
        return self.total.requests / self.duration if self.duration > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The mergeable part of the JSON report."""
        return {
            "duration_s": self.duration,
            "bytes_received": self.bytes_received,
            "warmup_requests": self.warmup_requests,
            "warmup_by_name": dict(self.warmup_by_name),
            "total": self.total.to_json(),
            "requests": {name: tally.to_json() for name, tally in self.by_name.items()},
            "timeline": [second.to_json() for second in self.timeline],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Results:
        """Read what :meth:`to_json` wrote; ValueError when a figure is not one a run can produce."""
        duration = float(data["duration_s"])
        if not 0 <= duration <= MAX_SECONDS:
            raise ValueError(f"duration_s {duration}: not a duration")
        return cls(
            total=Tally.from_json(data["total"]),
            by_name={str(name): Tally.from_json(tally) for name, tally in data["requests"].items()},
            timeline=[Tally.from_json(second) for second in data["timeline"]],
            duration=duration,
            bytes_received=_count_of(data["bytes_received"]),
            warmup_requests=_count_of(data["warmup_requests"]),
            warmup_by_name={str(k): _count_of(v) for k, v in data.get("warmup_by_name", {}).items()},
        )


def _second(seconds: list[Tally], offset: float) -> Tally:
    index = max(int(offset), 0)
    while len(seconds) <= index:
        seconds.append(Tally())
    return seconds[index]


def _count(tallies: Sequence[Tally], kind: str) -> None:
    for tally in tallies:
        tally.requests += 1
        tally.errors[kind] = tally.errors.get(kind, 0) + 1


def _responses(recorder: Recorder, specs: Sequence[RequestSpec], zero: float) -> dict[tuple[int, int], Tally]:
    """The responses as one tally per (request, second): samples are grouped in C-speed passes, not one by one."""
    latencies_us = [int(latency * 1e6 + 0.5) for latency in recorder.latencies]
    seconds = [int(end - zero) if end > zero else 0 for end in recorder.ends]
    keys = list(zip(recorder.requests, seconds, strict=True))
    groups: dict[tuple[int, int], Tally] = {}
    for (request, second, status, index), n in Counter(
        zip(recorder.requests, seconds, recorder.statuses, map(bucket_of, latencies_us), strict=True)
    ).items():
        tally = groups.get((request, second))
        if tally is None:
            tally = groups[request, second] = Tally()
        tally.requests += n
        tally.statuses[status] = tally.statuses.get(status, 0) + n
        if specs[request].is_success(status):
            tally.successful += n
        else:
            tally.errors[f"http_{status}"] = tally.errors.get(f"http_{status}", 0) + n
        tally.latency.buckets[index] = tally.latency.buckets.get(index, 0) + n
    samples: dict[tuple[int, int], list[int]] = defaultdict(list)
    for key, latency_us in zip(keys, latencies_us, strict=True):
        samples[key].append(latency_us)
    for key, values in samples.items():
        histogram = groups[key].latency
        histogram.count, histogram.sum_us = len(values), sum(values)
        histogram.min_us, histogram.max_us = min(values), max(values)
    return groups


def build(recorder: Recorder, specs: Sequence[RequestSpec], zero: float) -> Results:
    """Turn the samples of a phase into results; ``zero`` is the time the timeline counts seconds from."""
    results = Results(by_name={spec.label: Tally() for spec in specs})
    names = [results.by_name[spec.label] for spec in specs]
    total, seconds = results.total, results.timeline
    for (request, second), tally in sorted(_responses(recorder, specs, zero).items()):
        for target in (total, names[request], _second(seconds, second)):
            target.merge(tally)
    for request, kind, end in recorder.errors:
        _count((total, names[request], _second(seconds, end - zero)), kind)
    for request, end in recorder.dropped:
        _count((total, names[request], _second(seconds, end - zero)), ERROR_DROPPED)
    for (request, where), count in recorder.redirects.items():
        for tally in (total, names[request]):
            tally.add_redirects({where: count})
    finished = recorder.finished if recorder.finished is not None else recorder.started
    results.duration = max(finished - recorder.started, 0.0)
    results.bytes_received = recorder.bytes_received
    return results


def merge(parts: Sequence[Results]) -> Results:
    """Combine the results of shares that ran side by side: counts add up, the duration is the longest."""
    merged = Results()
    for part in parts:
        merged.total.merge(part.total)
        for name, tally in part.by_name.items():
            merged.by_name.setdefault(name, Tally()).merge(tally)
        for index, second in enumerate(part.timeline):
            _second(merged.timeline, index).merge(second)
        merged.duration = max(merged.duration, part.duration)
        merged.bytes_received += part.bytes_received
        merged.warmup_requests += part.warmup_requests
        for name, count in part.warmup_by_name.items():
            merged.warmup_by_name[name] = merged.warmup_by_name.get(name, 0) + count
    return merged
