"""This process's own files in the multiprocess directory, and the counters and histograms that write to them.

prometheus_client names a process's file by its pid alone, so a process that gets a dead one's pid continues
the dead one's file, and a folder cannot tell the two apart. Our families are written here instead, through
prometheus_client's own ``MmapedDict`` (the same layout), into files named by the writer's pid and start time
(see ``writers``): a file belongs to one process for its whole life. Other libraries' metrics are untouched.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import threading
import weakref
from collections.abc import Sequence

from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.utils import floatToGoString

from django_prodkit.metrics.files import file_name
from django_prodkit.metrics.writers import Writer, current_writer

logger = logging.getLogger("django_prodkit.metrics")

COUNTER = "counter"
HISTOGRAM = "histogram"


class ProcessFiles:
    """The files this process writes our values to, created at the first value of each type."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._files: dict[str, MmapedDict] = {}
        # The value of each key in the open files, so an increment writes without reading the mapping first.
        self._values: dict[str, float] = {}
        # Keys every file of a type holds from its start, counted or not (a histogram's buckets), by type.
        self._declared: dict[str, dict[str, None]] = {}
        self._writer: Writer | None = None
        # A forked child (gunicorn --preload, a Celery prefork child) is another writer: it forgets the parent's
        # files and opens its own at its first value. Weak, so a store dropped by a test is not kept alive.
        forget = weakref.WeakMethod(self._forget)
        os.register_at_fork(after_in_child=lambda: (method := forget()) is not None and method())

    @property
    def writer(self) -> Writer:
        """This process as the writer of its files."""
        if self._writer is None:
            self._writer = current_writer()
        return self._writer

    def add(self, kind: str, key: str, amount: float, counted: str | None = None) -> None:
        """Add ``amount`` to ``key`` in this process's file of type ``kind``, and 1 to ``counted`` if given.

        One lock for a histogram's sum and bucket: the request path takes it three times per request.
        """
        with self._lock:
            file = self._files.get(kind)
            if file is None:
                file = self._opened(kind)
            self._increment(file, key, amount)
            if counted is not None:
                self._increment(file, counted, 1.0)

    def declare(self, kind: str, keys: Sequence[str]) -> None:
        """Write ``keys`` with 0 now and into every later file of type ``kind`` (as prometheus_client does).

        A histogram's series shows all its buckets from its first observation, whichever file holds the count.
        """
        with self._lock:
            self._declared.setdefault(kind, {}).update(dict.fromkeys(keys))
            file = self._files.get(kind)
            if file is None:
                file = self._opened(kind)
            for key in keys:
                self._increment(file, key, 0.0)

    def _opened(self, kind: str) -> MmapedDict:
        file = self._files[kind] = self._open(kind)
        for key in self._declared.get(kind, {}):
            self._increment(file, key, 0.0)
        return file

    def _increment(self, file: MmapedDict, key: str, amount: float) -> None:
        value = self._values.get(key)
        if value is None:
            value = file.read_value(key)[0]  # type: ignore[no-untyped-call]
        value += amount
        self._values[key] = value
        file.write_value(key, value, 0.0)  # type: ignore[no-untyped-call]

    def _open(self, kind: str) -> MmapedDict:
        path = os.path.join(self.directory, file_name(kind, self.writer.name))
        # Created here with O_NOFOLLOW and mode 0600: MmapedDict's own open would follow a planted link.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
        return MmapedDict(path)  # type: ignore[no-untyped-call]

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._files = {}
        self._values = {}
        self._writer = None

    def close(self) -> None:
        """Close this process's files; a later value opens them again."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        for file in self._files.values():
            file.close()  # type: ignore[no-untyped-call]
        self._files = {}
        self._values = {}

    def retire(self) -> None:
        """Close this process's files and fold them into the totals: for a process that counts nothing more.

        Celery's ``worker_process_shutdown`` calls it in a pool child on its way out. A value counted after it
        opens a fresh file, so nothing is lost either way.
        """
        from django_prodkit.metrics.compaction import compact_quietly

        with self._lock:
            self._close()
            compact_quietly(self.directory, retired=self.writer.name)


class FileCounter:
    """One labelled counter series, written to this process's counter file."""

    __slots__ = ("_files", "_key")

    def __init__(
        self, files: ProcessFiles, name: str, documentation: str, labelnames: Sequence[str], labelvalues: Sequence[str]
    ) -> None:
        self._files = files
        self._key = mmap_key(name, name + "_total", list(labelnames), list(labelvalues), documentation)

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount`` (default 1)."""
        self._files.add(COUNTER, self._key, amount)


class FileHistogram:
    """One labelled histogram series: a sum and a count per bucket (not cumulative, as prometheus_client writes)."""

    __slots__ = ("_bounds", "_bucket_keys", "_files", "_sum_key")

    def __init__(
        self,
        files: ProcessFiles,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        labelvalues: Sequence[str],
        buckets: Sequence[float],
    ) -> None:
        self._files = files
        self._bounds = sorted({*(float(bound) for bound in buckets), math.inf})
        names, values = list(labelnames), list(labelvalues)
        self._sum_key = mmap_key(name, name + "_sum", names, values, documentation)
        bound_labels = [floatToGoString(bound) for bound in self._bounds]  # type: ignore[no-untyped-call]
        self._bucket_keys = [
            mmap_key(name, name + "_bucket", [*names, "le"], [*values, le], documentation) for le in bound_labels
        ]
        files.declare(HISTOGRAM, [self._sum_key, *self._bucket_keys])

    def observe(self, amount: float) -> None:
        """Count ``amount`` in the first bucket whose upper bound it does not exceed, and add it to the sum."""
        self._files.add(HISTOGRAM, self._sum_key, amount, self._bucket_keys[bisect.bisect_left(self._bounds, amount)])
