"""``PutMetricData`` through boto3: datums within every API limit, sent in chunks, retried with backoff."""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Iterator
from typing import Any

from django_prodkit.cloudwatch.aggregator import STATUS_CLASSES, TASK_OUTCOMES, Interval, SeriesStats, TaskStats
from django_prodkit.cloudwatch.config import CloudWatchSettings, endpoint_dimensions, task_dimensions

logger = logging.getLogger("django_prodkit.cloudwatch")

#: PutMetricData limits: datums per call, request size, values per datum.
MAX_DATUMS_PER_CALL = 1000
MAX_CALL_BYTES = 1_000_000
#: Our size estimate over-counts, but keep a margin for the request envelope too.
CALL_BYTES_BUDGET = 900_000
MAX_VALUES_PER_DATUM = 150
#: Attempts per call within one flush; then the data waits in the buffer for the next flush.
ATTEMPTS_PER_CALL = 3
RETRY_BASE_SECONDS = 0.2
CONNECT_TIMEOUT_SECONDS = 2.0
#: ClientError codes that will never succeed on a retry; anything else (throttling, 5xx, 403) is retried.
PERMANENT_ERRORS = frozenset(
    {"InvalidParameterValue", "InvalidParameterCombination", "MissingParameter", "InvalidParameterValueException"}
)
# Worst-case query-protocol encoding: "&MetricData.member.1000.Dimensions.member.30.Value=" is 51 characters.
_FIELD_OVERHEAD = 52


class PublishError(Exception):
    """A call failed; ``permanent`` when retrying the same data cannot help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def _dimensions(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"Name": name, "Value": value} for name, value in pairs]


def series_datums(
    stats: SeriesStats, dimensions: list[tuple[str, str]], timestamp: dt.datetime
) -> Iterator[dict[str, Any]]:
    """``RequestCount``, one count per status class, and ``ResponseTime`` as Values/Counts of 150 at most."""
    dims = _dimensions(dimensions)
    common = {"Dimensions": dims, "Timestamp": timestamp}
    yield {"MetricName": "RequestCount", "Unit": "Count", "Value": float(stats.count), **common}
    for klass in STATUS_CLASSES:
        yield {"MetricName": f"Status{klass}", "Unit": "Count", "Value": float(stats.statuses[klass]), **common}
    values = sorted(stats.durations)
    for start in range(0, len(values), MAX_VALUES_PER_DATUM):
        chunk = values[start : start + MAX_VALUES_PER_DATUM]
        yield {
            "MetricName": "ResponseTime",
            "Unit": "Milliseconds",
            "Values": chunk,
            "Counts": [float(stats.durations[value]) for value in chunk],
            **common,
        }


def task_datums(
    stats: TaskStats, dimensions: list[tuple[str, str]], timestamp: dt.datetime
) -> Iterator[dict[str, Any]]:
    """``TaskCount``, one count per outcome (``TaskFailed`` ...), and ``TaskDuration`` as Values/Counts."""
    common = {"Dimensions": _dimensions(dimensions), "Timestamp": timestamp}
    yield {"MetricName": "TaskCount", "Unit": "Count", "Value": float(stats.count), **common}
    for outcome in TASK_OUTCOMES:
        name = f"Task{outcome.capitalize()}"
        yield {"MetricName": name, "Unit": "Count", "Value": float(stats.outcomes[outcome]), **common}
    values = sorted(stats.durations)
    for start in range(0, len(values), MAX_VALUES_PER_DATUM):
        chunk = values[start : start + MAX_VALUES_PER_DATUM]
        counts = [float(stats.durations[value]) for value in chunk]
        yield {"MetricName": "TaskDuration", "Unit": "Milliseconds", "Values": chunk, "Counts": counts, **common}


def interval_datums(settings: CloudWatchSettings, interval: Interval) -> list[dict[str, Any]]:
    """Every datum of one interval: the service totals first, then each endpoint and method, then each task."""
    timestamp = dt.datetime.fromtimestamp(interval.timestamp, tz=dt.timezone.utc)
    service = settings.service_dimensions
    datums: list[dict[str, Any]] = []
    # A worker's intervals have tasks only: no request totals of zero for it.
    if interval.series:
        datums.extend(series_datums(interval.total(), service, timestamp))
    for (route, method), stats in sorted(interval.series.items()):
        datums.extend(series_datums(stats, [*service, *endpoint_dimensions(route, method)], timestamp))
    for task, task_stats in sorted(interval.tasks.items()):
        datums.extend(task_datums(task_stats, [*service, *task_dimensions(task)], timestamp))
    return datums


def estimate_size(datum: dict[str, Any]) -> int:
    """An upper bound of the datum's encoded size (URL-encoding can triple a string)."""
    size = 4 * _FIELD_OVERHEAD + 3 * len(datum["MetricName"]) + len(datum["Unit"]) + 32
    for dimension in datum["Dimensions"]:
        size += 2 * _FIELD_OVERHEAD + 3 * (len(dimension["Name"]) + len(dimension["Value"]))
    if "Value" in datum:
        return size + _FIELD_OVERHEAD + len(repr(datum["Value"]))
    for value, count in zip(datum["Values"], datum["Counts"], strict=True):
        size += 2 * _FIELD_OVERHEAD + len(repr(value)) + len(repr(count))
    return size


def chunk_datums(datums: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split into calls of at most 1,000 datums and well under 1 MB each."""
    chunks: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    current_bytes = 0
    for datum in datums:
        size = estimate_size(datum)
        if current and (len(current) == MAX_DATUMS_PER_CALL or current_bytes + size > CALL_BYTES_BUDGET):
            chunks.append(current)
            current, current_bytes = [], 0
        current.append(datum)
        current_bytes += size
    if current:
        chunks.append(current)
    return chunks


def _classify(exc: Exception) -> PublishError:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        return PublishError(f"PutMetricData failed: {code or exc}", permanent=code in PERMANENT_ERRORS)
    # Connection refused, timeouts, missing credentials: CloudWatch (or IAM) may be back on the next flush.
    return PublishError(f"PutMetricData failed: {type(exc).__name__}: {exc}", permanent=False)


class APIWriter:
    """Sends intervals with ``PutMetricData``; the boto3 client is made lazily, in the publisher's thread."""

    def __init__(self, settings: CloudWatchSettings, client: Any = None) -> None:
        self.settings = settings
        self._client = client

    def client(self) -> Any:
        """The CloudWatch client (``AWS_ENDPOINT_URL_CLOUDWATCH`` and the usual AWS variables apply)."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                connect_timeout=min(CONNECT_TIMEOUT_SECONDS, self.settings.api_timeout),
                read_timeout=self.settings.api_timeout,
                # Retries are ours (below) so a call never outlasts the flush deadline.
                retries={"total_max_attempts": 1},
                user_agent_extra="django-prodkit",
            )
            session = boto3.session.Session()
            self._client = session.client(
                "cloudwatch", region_name=self.settings.region, endpoint_url=self.settings.endpoint_url, config=config
            )
        return self._client

    def close(self) -> None:
        """Close the client's connections (at process exit)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def send(self, interval: Interval, deadline: float | None = None) -> None:
        """Send what remains of the interval; raise :class:`PublishError` leaving the rest for later."""
        chunks = chunk_datums(interval_datums(self.settings, interval))
        for chunk in chunks[interval.sent_chunks :]:
            if deadline is not None and time.monotonic() >= deadline:
                raise PublishError("PutMetricData not attempted before the deadline", permanent=False)
            self._put(chunk, deadline)
            interval.sent_chunks += 1

    def _put(self, chunk: list[dict[str, Any]], deadline: float | None) -> None:
        error: PublishError | None = None
        for attempt in range(ATTEMPTS_PER_CALL):
            if attempt:
                pause = RETRY_BASE_SECONDS * 2**attempt * random.uniform(0.5, 1.0)
                if deadline is not None and time.monotonic() + pause >= deadline:
                    break
                time.sleep(pause)
            try:
                self.client().put_metric_data(Namespace=self.settings.namespace, MetricData=chunk)
                return
            # botocore raises many unrelated classes (connection, timeout, credentials, ClientError): classify all.
            except Exception as exc:
                error = _classify(exc)
                if error.permanent:
                    raise error from exc
        raise error or PublishError("PutMetricData not attempted before the deadline", permanent=False)
