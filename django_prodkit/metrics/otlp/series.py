"""The store's metric families as OpenTelemetry series: names, attributes and values, and their deltas.

Read from the same merged families the metrics endpoint renders (``MetricStore.families()``), so what is
exported is the exact aggregate over every worker. Names and attributes follow OpenTelemetry's semantic
conventions for HTTP servers where they fit: ``http.server.request.duration`` in seconds with
``http.request.method`` and ``http.route``. The kit's own figures keep a ``prodkit.`` prefix.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client.metrics_core import Metric

from django_prodkit.context.http import OTHER_METHOD, UNMATCHED_ROUTE
from django_prodkit.metrics.store import (
    DB_QUERIES_METRIC,
    DURATION_METRIC,
    REQUESTS_METRIC,
    TASK_DURATION_METRIC,
    TASKS_METRIC,
)

AttributeValue = str | int
Attributes = tuple[tuple[str, AttributeValue], ...]
#: A counter's value is ``(total,)``; a histogram's is ``(sum, count, bucket counts..., +Inf bucket count)``.
Values = tuple[float, ...]
SeriesKey = tuple[str, Attributes]


@dataclass(frozen=True)
class Instrument:
    """How one of the store's families is exported."""

    name: str
    description: str
    unit: str
    histogram: bool


REQUESTS = Instrument("prodkit.http.server.requests", "HTTP requests served.", "{request}", False)
DURATION = Instrument("http.server.request.duration", "Duration of HTTP server requests.", "s", True)
DB_QUERIES = Instrument("prodkit.http.server.db.queries", "Database queries per HTTP request.", "{query}", True)
TASK_RUNS = Instrument("prodkit.task.runs", "Task runs finished, by outcome.", "{run}", False)
TASK_DURATION = Instrument("prodkit.task.duration", "Time a task run took in the worker.", "s", True)

INSTRUMENTS: dict[str, Instrument] = {
    REQUESTS_METRIC: REQUESTS,
    DURATION_METRIC: DURATION,
    DB_QUERIES_METRIC: DB_QUERIES,
    TASKS_METRIC: TASK_RUNS,
    TASK_DURATION_METRIC: TASK_DURATION,
}
BY_NAME = {instrument.name: instrument for instrument in INSTRUMENTS.values()}

#: OpenTelemetry's value for a method outside the known set.
SEMCONV_OTHER_METHOD = "_OTHER"


def _http(labels: Mapping[str, str], with_status: bool) -> Attributes:
    method = labels["method"]
    attributes: list[tuple[str, AttributeValue]] = [
        ("http.request.method", SEMCONV_OTHER_METHOD if method == OTHER_METHOD else method)
    ]
    # The conventions leave the route out when no pattern matched.
    if labels["route"] != UNMATCHED_ROUTE:
        attributes.append(("http.route", labels["route"]))
    if with_status:
        attributes.append(("http.response.status_code", int(labels["status"])))
    return tuple(attributes)


def _task(labels: Mapping[str, str]) -> Attributes:
    attributes: list[tuple[str, AttributeValue]] = [("prodkit.task.name", labels["task"])]
    if "outcome" in labels:
        attributes.append(("prodkit.task.outcome", labels["outcome"]))
    return tuple(attributes)


def _attributes(family: str, labels: Mapping[str, str]) -> Attributes:
    if family in (TASKS_METRIC, TASK_DURATION_METRIC):
        return _task(labels)
    return _http(labels, with_status=family == REQUESTS_METRIC)


@dataclass
class Snapshot:
    """Every series' cumulative values at one moment, and each histogram's finite bucket bounds."""

    values: dict[SeriesKey, Values] = field(default_factory=dict)
    bounds: dict[str, tuple[float, ...]] = field(default_factory=dict)


def _counter(family: Metric, instrument: Instrument, result: Snapshot) -> None:
    for sample in family.samples:
        if sample.name == family.name + "_total":
            key = (instrument.name, _attributes(family.name, sample.labels))
            result.values[key] = (result.values.get(key, (0.0,))[0] + sample.value,)


def _histogram(family: Metric, instrument: Instrument, result: Snapshot) -> None:
    buckets: dict[Attributes, dict[float, float]] = defaultdict(dict)
    sums: dict[Attributes, float] = defaultdict(float)
    for sample in family.samples:
        # ``le`` is not one of the labels an attribute is made of.
        attributes = _attributes(family.name, sample.labels)
        if sample.name == family.name + "_bucket":
            buckets[attributes][float(sample.labels["le"])] = sample.value
        elif sample.name == family.name + "_sum":
            sums[attributes] += sample.value
    for attributes, by_bound in buckets.items():
        bounds = tuple(sorted(bound for bound in by_bound if math.isfinite(bound)))
        result.bounds.setdefault(instrument.name, bounds)
        # The store's buckets are cumulative; OTLP wants the count of each bucket, the last one above every bound.
        cumulative = [by_bound[bound] for bound in bounds] + [by_bound.get(math.inf, 0.0)]
        counts = [cumulative[0]] + [high - low for low, high in itertools.pairwise(cumulative)]
        result.values[(instrument.name, attributes)] = (sums[attributes], cumulative[-1], *counts)


def snapshot(families: Sequence[Metric]) -> Snapshot:
    """The store's families as OpenTelemetry series (counters and explicit-bucket histograms)."""
    result = Snapshot()
    for family in families:
        instrument = INSTRUMENTS.get(family.name)
        if instrument is not None:
            (_histogram if instrument.histogram else _counter)(family, instrument, result)
    return result


def delta(current: Snapshot, baseline: Mapping[SeriesKey, Values]) -> Snapshot:
    """What changed since ``baseline``: series with nothing new are left out."""
    changed = Snapshot(bounds=dict(current.bounds))
    for key, values in current.values.items():
        before = baseline.get(key)
        if before is None or len(before) != len(values):
            difference = values
        else:
            difference = tuple(now - then for now, then in zip(values, before, strict=True))
        # A histogram's count, or a counter's total, moved.
        if difference[0 if len(difference) == 1 else 1] > 0:
            changed.values[key] = difference
    return changed


def to_json(values: Mapping[SeriesKey, Values]) -> list[list[object]]:
    """Series values as JSON-friendly lists (for the state file a later exporting process reads)."""
    return [[name, [list(pair) for pair in pairs], list(numbers)] for (name, pairs), numbers in values.items()]


def from_json(data: Iterable[Sequence[object]]) -> dict[SeriesKey, Values]:
    """The inverse of :func:`to_json`."""
    values: dict[SeriesKey, Values] = {}
    for name, attributes, numbers in data:
        key = (str(name), tuple((str(k), v) for k, v in attributes))  # type: ignore[attr-defined]
        values[key] = tuple(float(n) for n in numbers)  # type: ignore[attr-defined]
    return values
