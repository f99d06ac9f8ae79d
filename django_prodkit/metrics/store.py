"""The metric store: files shared by every process when ``PROMETHEUS_MULTIPROC_DIR`` is set, else collectors.

In multiprocess mode every process writes its counts to memory-mapped files of its own in that directory (see
``process_files``) and a read merges the files of all processes, live or dead, so counts survive recycling. Without the
variable the collectors live in a private registry in this process (``runserver``, tests).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import Metric

from django_prodkit.conf import get_config
from django_prodkit.metrics.multiproc import claim_started, multiproc_dir, prepare_directory
from django_prodkit.metrics.process_files import FileCounter, FileHistogram, ProcessFiles

REQUESTS_METRIC = "prodkit_http_requests"
DURATION_METRIC = "prodkit_http_request_duration_seconds"
TASKS_METRIC = "prodkit_tasks"
TASK_DURATION_METRIC = "prodkit_task_duration_seconds"
DB_QUERIES_METRIC = "prodkit_http_request_db_queries"
METRIC_NAMES = frozenset({REQUESTS_METRIC, DURATION_METRIC, DB_QUERIES_METRIC, TASKS_METRIC, TASK_DURATION_METRIC})

#: Upper bounds of the queries-per-request histogram: exact up to 3, then coarser where N+1 lives.
DB_QUERY_BUCKETS = (0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)

#: The largest relative error of a reported p50/p95/p99 that the default buckets promise (docs/metrics.md),
#: for durations between the lowest bound and 60 s.
PERCENTILE_ERROR = 0.20
_LOWEST_BUCKET = 0.0005
_HIGHEST_BUCKET = 60.0
# A geometric midpoint is within ``e`` of every value in its bucket when neighbours are at most ``(1 + e)**2``
# apart; a hair less leaves room for rounding the bounds to four significant digits.
_BUCKET_GROWTH = (1.0 + PERCENTILE_ERROR) ** 2 - 0.001
_REQUEST_LABELS = ("method", "route", "status")
_ENDPOINT_LABELS = ("method", "route")


def default_buckets() -> tuple[float, ...]:
    """Upper bounds in seconds from 0.5 ms past 60 s, each at most 1.44 times the previous one (34 bounds).

    The fewest bounds that keep the percentile error within :data:`PERCENTILE_ERROR` over that range (see
    :func:`percentile_error_bound`): 37 Prometheus series per endpoint with ``+Inf``, sum and count.
    """
    bounds: list[float] = []
    value = _LOWEST_BUCKET
    while not bounds or bounds[-1] < _HIGHEST_BUCKET:
        bounds.append(float(f"{value:.4g}"))
        value *= _BUCKET_GROWTH
    return tuple(bounds)


def percentile_error_bound(buckets: Sequence[float]) -> float:
    """The largest relative error of a percentile reported as a bucket's geometric midpoint.

    A value ``x`` in ``(lo, hi]`` reported as ``sqrt(lo * hi)`` is off by at most ``sqrt(hi / lo) - 1``;
    it holds for values between the lowest and the highest bound.
    """
    ratio = max((hi / lo for lo, hi in itertools.pairwise(buckets)), default=math.inf)
    return math.sqrt(ratio) - 1.0


def configured_buckets() -> tuple[float, ...]:
    """The histogram bounds in seconds: ``METRICS_BUCKETS``, or the defaults when it is empty."""
    configured = get_config()["METRICS_BUCKETS"]
    return tuple(float(b) for b in configured) if configured else default_buckets()


class MetricStore:
    """Request counts by method, route and status, and a duration histogram by method and route; the same for tasks."""

    def __init__(self, buckets: Sequence[float], directory: str | None) -> None:
        self.buckets = tuple(buckets)
        self.directory = directory
        self._started_at = time.time()
        # name: (documentation, label names, histogram buckets or None for a counter)
        self._specs: dict[str, tuple[str, tuple[str, ...], tuple[float, ...] | None]] = {
            REQUESTS_METRIC: ("HTTP requests served, by method, URL pattern and status code.", _REQUEST_LABELS, None),
            DURATION_METRIC: (
                "Time from the metrics middleware receiving a request to returning its response.",
                _ENDPOINT_LABELS,
                self.buckets,
            ),
            DB_QUERIES_METRIC: (
                "Database queries per HTTP request, by method and URL pattern.",
                _ENDPOINT_LABELS,
                DB_QUERY_BUCKETS,
            ),
            TASKS_METRIC: (
                "Task runs finished, by task name and outcome (succeeded, failed, retried, ignored).",
                ("task", "outcome"),
                None,
            ),
            TASK_DURATION_METRIC: ("Time a task run took in the worker, by task name.", ("task",), self.buckets),
        }
        self.files: ProcessFiles | None = None
        self.registry: CollectorRegistry | None = None
        self._metrics: dict[str, Counter | Histogram] = {}
        if directory is not None:
            # A process starting folds the files of the dead processes it finds (see ``compaction``).
            prepare_directory(directory)
            self.files = ProcessFiles(directory)
        else:
            self.registry = CollectorRegistry(auto_describe=True)
            for name, (documentation, labels, bounds) in self._specs.items():
                if bounds is None:
                    self._metrics[name] = Counter(name, documentation, labels, registry=self.registry)
                else:
                    self._metrics[name] = Histogram(name, documentation, labels, buckets=bounds, registry=self.registry)
        # Children resolved once per label set: ``labels()`` takes a lock and builds tuples on every call.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._task_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._db_children: dict[tuple[str, str], Any] = {}

    def _child(self, name: str, *labelvalues: str) -> Any:
        """One series of ``name``: in this process's files in multiprocess mode, else in the private registry."""
        if self.files is None:
            return self._metrics[name].labels(*labelvalues)
        documentation, labels, bounds = self._specs[name]
        if bounds is None:
            return FileCounter(self.files, name, documentation, labels, labelvalues)
        return FileHistogram(self.files, name, documentation, labels, labelvalues, bounds)

    @property
    def started_at(self) -> float:
        """When counting started (Unix time): the directory's first use (multiprocess), else this store's creation."""
        if self.directory is None:
            return self._started_at
        # Read each time: with ``--preload`` the store exists before ``on_starting`` prepares the directory.
        return claim_started(self.directory)

    @property
    def multiprocess(self) -> bool:
        """Whether counts are shared through ``PROMETHEUS_MULTIPROC_DIR``."""
        return self.directory is not None

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and its duration; labels must already be bounded (see ``django_prodkit.context.http``)."""
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = (
                self._child(REQUESTS_METRIC, method, route, str(status)),
                self._child(DURATION_METRIC, method, route),
            )
            children = self._children.setdefault(key, children)
        children[0].inc()
        children[1].observe(seconds)

    def observe_task(self, task: str, outcome: str, seconds: float) -> None:
        """Count one finished task run and its duration; ``task`` must already be bounded."""
        key = (task, outcome)
        children = self._task_children.get(key)
        if children is None:
            children = (self._child(TASKS_METRIC, task, outcome), self._child(TASK_DURATION_METRIC, task))
            children = self._task_children.setdefault(key, children)
        children[0].inc()
        children[1].observe(seconds)

    def observe_queries(self, method: str, route: str, queries: int) -> None:
        """Count one request's database queries (labels bounded as for :meth:`observe`)."""
        key = (method, route)
        child = self._db_children.get(key)
        if child is None:
            child = self._db_children.setdefault(key, self._child(DB_QUERIES_METRIC, method, route))
        child.observe(queries)

    def families(self) -> list[Metric]:
        """The current metric families (merged over every worker's files in multiprocess mode)."""
        if self.directory is not None:
            # Imported here: merge uses this module's metric names.
            from django_prodkit.metrics.merge import merge_directory

            return merge_directory(self.directory)
        assert self.registry is not None
        merged = list(self.registry.collect())
        # Multiprocess mode has no ``_created`` series; dropping them here makes both modes expose the same.
        for family in merged:
            family.samples = [s for s in family.samples if not s.name.endswith("_created")]
        return [family for family in merged if family.name in METRIC_NAMES]


_store: MetricStore | None = None
_lock = threading.Lock()


def get_store() -> MetricStore:
    """The process-wide store, created on first use from ``PRODKIT["METRICS_BUCKETS"]``."""
    global _store
    store = _store
    if store is None:
        with _lock:
            if _store is None:
                _store = MetricStore(configured_buckets(), multiproc_dir())
            store = _store
    return store


def reset_store() -> None:
    """Start counting afresh in this process (for tests; single-process mode only)."""
    global _store
    with _lock:
        if _store is not None and _store.multiprocess:
            raise RuntimeError("The multiprocess store is shared with other workers and cannot be reset.")
        _store = None
