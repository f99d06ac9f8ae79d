"""Merging the workers' multiprocess files into our metric families (requests and tasks).

prometheus_client's ``MultiProcessCollector`` does the same for every metric in the directory, keeping every
sample of every file as an object before summing; with eight workers and fine histogram buckets that is
several times slower than the endpoint's budget. This finds each of our keys and its value position with
prometheus_client's own reader (again only when a file grew), reads just those values on later reads, sums
each key over all files first (counters and buckets are summed, as the collector does) and only then builds
the samples, once per distinct series.
"""

from __future__ import annotations

import functools
import glob
import json
import mmap
import os
import struct
from collections import defaultdict
from typing import Any, NamedTuple

from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.utils import floatToGoString

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
_SUMMED_FILE_TYPES = ("counter", "histogram")
# The layout prometheus_client's MmapedDict writes: a native int of bytes used, and a native double at each
# value position its reader reports.
_INTEGER = struct.Struct("i")
_DOUBLE = struct.Struct("d")
# Our series are bounded by routes x methods x statuses x buckets; the cache only has to hold them.
_MAX_PARSED_KEYS = 1 << 16


class _FileIndex(NamedTuple):
    """Where our values sit in one file; files only grow by appending, so positions stay valid."""

    inode: int
    used: int
    keys: tuple[str, ...]
    positions: tuple[int, ...]


_indexes: dict[str, _FileIndex] = {}


def _read_used(path: str) -> tuple[bytes, int, int]:
    with open(path, "rb") as handle:
        inode = os.fstat(handle.fileno()).st_ino
        data = handle.read(mmap.PAGESIZE)
        used = _INTEGER.unpack_from(data, 0)[0]
        if used > len(data):
            data += handle.read(used - len(data))
    return data, used, inode


def _index(path: str, used: int, inode: int) -> _FileIndex:
    index = _indexes.get(path)
    if index is None or index.inode != inode or index.used != used:
        # Parsed again only when a worker added a series (rare) or a new file appeared.
        ours = [
            (key, position)
            for key, _value, _timestamp, position in MmapedDict.read_all_values_from_file(path)  # type: ignore[no-untyped-call]
            if key.startswith(_KEY_PREFIX)
        ]
        index = _FileIndex(inode, used, tuple(k for k, _ in ours), tuple(p for _, p in ours))
        _indexes[path] = index
    return index


def sum_files(directory: str) -> dict[str, float]:
    """Every one of our keys with its value summed over the counter and histogram files of all workers."""
    totals: dict[str, float] = defaultdict(float)
    unpack = _DOUBLE.unpack_from
    for path in glob.glob(os.path.join(directory, "*.db")):
        if os.path.basename(path).split("_", 1)[0] not in _SUMMED_FILE_TYPES:
            continue
        try:
            data, used, inode = _read_used(path)
        except FileNotFoundError:
            continue
        index = _index(path, used, inode)
        # The index may come from a later read of a file a worker has just appended to: a series added after
        # ``data`` was read is not in it yet, and is left for the next read.
        last = len(data) - _DOUBLE.size
        for key, position in zip(index.keys, index.positions, strict=True):
            if position <= last:
                totals[key] += unpack(data, position)[0]
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
