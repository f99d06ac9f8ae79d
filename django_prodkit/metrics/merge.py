"""Merging the compacted store and the live workers' multiprocess files into our metric families.

prometheus_client's ``MultiProcessCollector`` does the same for every metric in the directory, keeping every
sample of every file as an object before summing; with eight workers and fine histogram buckets that is
several times slower than the endpoint's budget. This finds each of our keys and its value position in a
file (again only when the file grew), reads just those values on later reads, sums each key over all files
first (counters and buckets are summed, as the collector does) and only then builds the samples, once per
distinct series. The values of exited workers come from the compacted store (see ``compaction``); a read that
finds the files of a dead writer folds them first, so a server without exit hooks (``uvicorn --workers``) stays
bounded too.
"""

from __future__ import annotations

import functools
import json
import struct
from collections import defaultdict
from typing import Any, NamedTuple

from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from django_prodkit.metrics.compaction import compact_quietly, dead_writers, locked, read_compacted, read_version
from django_prodkit.metrics.files import WorkerFile, iter_values, read_used, summed_files
from django_prodkit.metrics.store import (
    DB_QUERIES_METRIC,
    DURATION_METRIC,
    REQUESTS_METRIC,
    TASK_DURATION_METRIC,
    TASKS_METRIC,
)

# ``mmap_key`` writes json.dumps([metric name, sample name, labels, help]): ours all start like this.
_KEY_PREFIX = '["prodkit_'
#: Our counters, and our histograms with the labels that name one series.
_COUNTERS = (REQUESTS_METRIC, TASKS_METRIC)
_HISTOGRAMS = {
    DURATION_METRIC: ("method", "route"),
    DB_QUERIES_METRIC: ("method", "route"),
    TASK_DURATION_METRIC: ("task",),
}
_DOUBLE = struct.Struct("d")
# Our series are bounded by routes x methods x statuses x buckets; the cache only has to hold them.
_MAX_PARSED_KEYS = 1 << 16
# A read retries when a compaction finished while it read. Reads never wait for the master unless they
# collide this many times in a row (workers exiting faster than a read takes); then they take the lock.
_OPTIMISTIC_ATTEMPTS = 3


class _FileIndex(NamedTuple):
    """Where our values sit in one file; files only grow by appending, so positions stay valid."""

    inode: int
    used: int
    keys: tuple[str, ...]
    positions: tuple[int, ...]


_indexes: dict[str, _FileIndex] = {}


def _index(path: str, data: bytes, used: int, inode: int) -> _FileIndex:
    index = _indexes.get(path)
    if index is None or index.inode != inode or index.used != used:
        # Parsed again only when a worker added a series (rare) or a new file appeared.
        ours = [(key, position) for key, _value, position in iter_values(data, used) if key.startswith(_KEY_PREFIX)]
        index = _FileIndex(inode, used, tuple(k for k, _ in ours), tuple(p for _, p in ours))
        _indexes[path] = index
    return index


def _sum_live(files: list[WorkerFile], folding: frozenset[str], totals: dict[str, float]) -> None:
    unpack = _DOUBLE.unpack_from
    seen = set()
    for worker_file in files:
        if worker_file.writer in folding:
            continue  # already in the compacted totals
        seen.add(worker_file.path)
        try:
            data, used, inode = read_used(worker_file.path)
        except FileNotFoundError:
            continue  # folded since the listing: the generation check below sees it
        if not used:
            continue  # being born: nothing counted yet
        index = _index(worker_file.path, data, used, inode)
        for key, position in zip(index.keys, index.positions, strict=True):
            totals[key] += unpack(data, position)[0]
    # Forget the files that were folded away, so the cache stays as small as the directory. A set difference
    # and pop, not a loop over the dict: threads of one worker (gthread) read at the same time.
    for path in _indexes.keys() - seen:
        _indexes.pop(path, None)


def _try_sum(directory: str) -> dict[str, float] | None:
    compacted = read_compacted(directory)
    totals: dict[str, float] = defaultdict(float)
    _sum_live(summed_files(directory), compacted.folding, totals)
    if read_version(directory) != compacted.version:
        return None  # a compaction ran while the files were read: one may be counted twice or not at all
    for values in compacted.values.values():
        for key, value in values.items():
            if key.startswith(_KEY_PREFIX):
                totals[key] += value
    return totals


def sum_files(directory: str) -> dict[str, float]:
    """Every one of our keys with its value summed over the compacted store and the files of all writers.

    The files of writers that are dead are folded first (they would be counted exactly either way; folding
    keeps the directory bounded when no server hook does it).
    """
    if dead_writers(summed_files(directory), read_compacted(directory).folding):
        compact_quietly(directory)
    for _attempt in range(_OPTIMISTIC_ATTEMPTS):
        totals = _try_sum(directory)
        if totals is not None:
            return totals
    with locked(directory, exclusive=False):
        totals = _try_sum(directory)
    if totals is None:
        raise RuntimeError(f"the metrics in {directory} changed while the compaction lock was held")
    return totals


@functools.lru_cache(maxsize=_MAX_PARSED_KEYS)
def _parse_key(key: str) -> tuple[str, str, dict[str, str], str]:
    metric_name, sample_name, labels, help_text = json.loads(key)
    return metric_name, sample_name, labels, help_text


def merge_directory(directory: str) -> list[Metric]:
    """Our counters and histograms, merged over every worker that ever wrote to ``directory``."""
    families: dict[str, Metric] = {}
    buckets: dict[tuple[str, tuple[str, ...]], dict[float, float]] = defaultdict(lambda: defaultdict(float))
    sums: dict[tuple[str, tuple[str, ...]], float] = defaultdict(float)
    for key, value in sum_files(directory).items():
        metric_name, sample_name, labels, help_text = _parse_key(key)
        if metric_name in _COUNTERS:
            family = families.get(metric_name)
            if family is None:
                family = families[metric_name] = Metric(metric_name, help_text, "counter")
            family.add_sample(sample_name, dict(labels), value)
        elif metric_name in _HISTOGRAMS:
            if metric_name not in families:
                families[metric_name] = Metric(metric_name, help_text, "histogram")
            series = (metric_name, tuple(labels[name] for name in _HISTOGRAMS[metric_name]))
            if sample_name == metric_name + "_bucket":
                buckets[series][float(labels["le"])] += value
            elif sample_name == metric_name + "_sum":
                sums[series] += value
    for (metric_name, values), counts in sorted(buckets.items()):
        labels = dict(zip(_HISTOGRAMS[metric_name], values, strict=True))
        _add_histogram(families[metric_name], labels, counts, sums[(metric_name, values)])
    order = (*_COUNTERS, *_HISTOGRAMS)
    return [families[name] for name in sorted(families, key=order.index)]


def _add_histogram(family: Metric, labels: dict[str, Any], counts: dict[float, float], total: float) -> None:
    # The files hold per-bucket counts; the exposition wants them cumulative.
    cumulative = 0.0
    for bound in sorted(counts):
        cumulative += counts[bound]
        family.add_sample(family.name + "_bucket", {**labels, "le": floatToGoString(bound)}, cumulative)  # type: ignore[no-untyped-call]
    family.add_sample(family.name + "_count", labels, cumulative)
    family.add_sample(family.name + "_sum", labels, total)
