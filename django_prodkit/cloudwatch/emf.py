"""CloudWatch Embedded Metric Format: one JSON document per endpoint and method per flush interval."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

from django_prodkit.cloudwatch.aggregator import STATUS_CLASSES, TASK_OUTCOMES, Interval, SeriesStats, TaskStats
from django_prodkit.cloudwatch.config import CloudWatchSettings, endpoint_dimensions, task_dimensions

#: The EMF limit on values in one metric's array (the specification's is 100).
MAX_VALUES_PER_METRIC = 100
#: The EMF limit on metric definitions in one document.
MAX_METRICS_PER_DOCUMENT = 100
#: CloudWatch Logs events are at most 256 KB; our documents stay far below (checked in the tests).
MAX_DOCUMENT_BYTES = 256 * 1024

REQUEST_COUNT = "RequestCount"
RESPONSE_TIME = "ResponseTime"
COUNT_METRICS = (REQUEST_COUNT, *(f"Status{klass}" for klass in STATUS_CLASSES))
TASK_COUNT = "TaskCount"
TASK_DURATION = "TaskDuration"
#: ``TaskSucceeded``, ``TaskFailed``, ``TaskRetried``, by outcome.
TASK_OUTCOME_METRICS = {outcome: f"Task{outcome.capitalize()}" for outcome in TASK_OUTCOMES}


def _expanded(durations: dict[float, int]) -> Iterator[float]:
    # EMF has no counts: a value seen n times is written n times.
    for value in sorted(durations):
        for _ in range(durations[value]):
            yield value


def _chunks(values: Iterator[float], size: int) -> Iterator[list[float]]:
    chunk: list[float] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def series_documents(
    settings: CloudWatchSettings, timestamp: float, route: str, method: str, stats: SeriesStats
) -> Iterator[dict[str, Any]]:
    """The EMF documents for one series: counts in the first, response times 100 values per document."""
    service_dims = settings.service_dimensions
    all_dims = [*service_dims, *endpoint_dimensions(route, method)]
    # Two dimension sets: the service on its own (for service-wide graphs and percentiles) and per endpoint.
    dimension_sets = [[name for name, _ in service_dims], [name for name, _ in all_dims]]
    base: dict[str, Any] = dict(all_dims)
    millis = int(timestamp * 1000)
    value_chunks = _chunks(_expanded(stats.durations), MAX_VALUES_PER_METRIC)
    first = next(value_chunks, None)

    def document(metrics: dict[str, tuple[str, Any]]) -> dict[str, Any]:
        directive = {
            "Namespace": settings.namespace,
            "Dimensions": dimension_sets,
            "Metrics": [{"Name": name, "Unit": unit} for name, (unit, _) in metrics.items()],
        }
        return {
            "_aws": {"Timestamp": millis, "CloudWatchMetrics": [directive]},
            **base,
            **{name: value for name, (_, value) in metrics.items()},
        }

    counts: dict[str, tuple[str, Any]] = {REQUEST_COUNT: ("Count", stats.count)}
    counts.update({f"Status{klass}": ("Count", stats.statuses[klass]) for klass in STATUS_CLASSES})
    if first is not None:
        counts[RESPONSE_TIME] = ("Milliseconds", first)
    yield document(counts)
    for chunk in value_chunks:
        yield document({RESPONSE_TIME: ("Milliseconds", chunk)})


def task_documents(
    settings: CloudWatchSettings, timestamp: float, task: str, stats: TaskStats
) -> Iterator[dict[str, Any]]:
    """The EMF documents for one task name: run and outcome counts in the first, durations 100 per document."""
    service_dims = settings.service_dimensions
    all_dims = [*service_dims, *task_dimensions(task)]
    directive = {
        "Namespace": settings.namespace,
        "Dimensions": [[name for name, _ in service_dims], [name for name, _ in all_dims]],
    }
    millis = int(timestamp * 1000)
    counts: dict[str, tuple[str, Any]] = {TASK_COUNT: ("Count", stats.count)}
    counts.update({TASK_OUTCOME_METRICS[o]: ("Count", stats.outcomes[o]) for o in TASK_OUTCOMES})
    value_chunks = _chunks(_expanded(stats.durations), MAX_VALUES_PER_METRIC)
    first = next(value_chunks, None)
    if first is not None:
        counts[TASK_DURATION] = ("Milliseconds", first)
    for metrics in (counts, *({TASK_DURATION: ("Milliseconds", chunk)} for chunk in value_chunks)):
        yield {
            "_aws": {
                "Timestamp": millis,
                "CloudWatchMetrics": [
                    {**directive, "Metrics": [{"Name": name, "Unit": unit} for name, (unit, _) in metrics.items()]}
                ],
            },
            **dict(all_dims),
            **{name: value for name, (_, value) in metrics.items()},
        }


def interval_documents(settings: CloudWatchSettings, interval: Interval) -> Iterator[dict[str, Any]]:
    """Every EMF document for one closed interval: its endpoints', then its tasks'."""
    for (route, method), stats in sorted(interval.series.items()):
        yield from series_documents(settings, interval.timestamp, route, method, stats)
    for task, task_stats in sorted(interval.tasks.items()):
        yield from task_documents(settings, interval.timestamp, task, task_stats)


class EMFWriter:
    """Writes EMF documents as single JSON lines to stdout or to a named logger."""

    def __init__(self, settings: CloudWatchSettings) -> None:
        self.settings = settings
        self._logger = logging.getLogger(settings.logger) if settings.logger else None
        self._lock = threading.Lock()

    def send(self, interval: Interval, deadline: float | None = None) -> None:
        """Write the interval's documents; an ``OSError`` leaves it in the buffer for the next flush."""
        lines = [json.dumps(doc, separators=(",", ":")) for doc in interval_documents(self.settings, interval)]
        with self._lock:
            # sent_chunks counts the lines already written, so a retry after an error never repeats one.
            for line in lines[interval.sent_chunks :]:
                if self._logger is not None:
                    self._logger.info(line)
                else:
                    # One write and flush per line keeps lines of workers sharing a pipe from interleaving.
                    sys.stdout.write(line + "\n")
                    sys.stdout.flush()
                interval.sent_chunks += 1
