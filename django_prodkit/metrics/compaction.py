"""Compaction: the values of exited workers folded into one file, so the directory stays bounded.

When gunicorn reaps a worker, the master adds every value of the worker's counter, histogram and summary
files (every metric family in them, ours and any other) to ``prodkit_compacted``, then deletes the files.
The hand-over keeps every read exact (docs/metrics.md, "Compaction"):

1. the new totals are written together with the dead pid in ``folding`` (temporary file, fsync,
   ``os.replace``: a reader sees the old file or the new one, never a mix), and the generation goes up;
2. the worker's files are deleted;
3. the file is written again with ``folding`` empty, so a new process that reuses the pid is counted.

A reader takes the compacted file, reads the workers' files skipping the pids in ``folding``, and then checks
that the generation has not changed; if it has, a compaction ran in between and it reads again (after a few
collisions, holding the lock shared, which no compaction can pass). After any prefix of these steps (a
master killed at any point) a read counts each value exactly once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from typing import NamedTuple

from django_prodkit.metrics.files import files_of, read_values

#: The compacted store; not ``*.db``, so prometheus_client's own collector leaves it alone.
COMPACTED_FILE = "prodkit_compacted"
#: Held (``flock``) exclusively by whoever writes the compacted store, so two masters sharing a directory (a
#: ``USR2`` upgrade with a directory you set) never lose each other's update; shared by a reader that lost
#: the race against compactions several times in a row, so it always finishes.
LOCK_FILE = "prodkit_compaction.lock"
TEMPORARY_PREFIX = ".prodkit-compacted-"
_MAGIC = "prodkit-compacted"
_FORMAT = "1"

logger = logging.getLogger("django_prodkit.metrics")

#: Values by file type, then by prometheus_client's key.
Values = dict[str, dict[str, float]]


class Compacted(NamedTuple):
    """One version of the compacted store."""

    generation: int
    folding: frozenset[str]
    values: Values


EMPTY = Compacted(0, frozenset(), {})

# The last version parsed, by the identity of the file it came from: most reads find it unchanged.
_parsed: tuple[tuple[int, int, int], Compacted] | None = None


def _header(generation: int, folding: frozenset[str]) -> str:
    return f"{_MAGIC} {_FORMAT} {generation} {','.join(sorted(folding)) or '-'}\n"


def _parse_header(line: str) -> tuple[int, frozenset[str]]:
    magic, version, generation, folding = line.split()
    if magic != _MAGIC or version != _FORMAT:
        raise ValueError(f"not a compacted store of format {_FORMAT}: {line[:80]!r}")
    return int(generation), frozenset() if folding == "-" else frozenset(folding.split(","))


def _open(directory: str) -> int | None:
    try:
        return os.open(os.path.join(directory, COMPACTED_FILE), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


def read_compacted(directory: str) -> Compacted:
    """The current compacted store of ``directory`` (empty before the first compaction)."""
    global _parsed
    fd = _open(directory)
    if fd is None:
        return EMPTY
    with os.fdopen(fd, "r", encoding="utf-8") as handle:
        status = os.fstat(fd)
        identity = (status.st_ino, status.st_size, status.st_mtime_ns)
        cached = _parsed
        if cached is not None and cached[0] == identity:
            return cached[1]
        generation, folding = _parse_header(handle.readline())
        raw = json.loads(handle.read())
    compacted = Compacted(generation, folding, {kind: dict(values) for kind, values in raw.items()})
    _parsed = (identity, compacted)
    return compacted


def read_generation(directory: str) -> int:
    """Only the generation of the compacted store (its first line), for a reader's final check."""
    fd = _open(directory)
    if fd is None:
        return 0
    with os.fdopen(fd, "r", encoding="utf-8") as handle:
        return _parse_header(handle.readline())[0]


def _write(directory: str, compacted: Compacted) -> None:
    # mkstemp opens with O_CREAT | O_EXCL | O_NOFOLLOW and mode 0600; os.replace renames over the name
    # without following a link planted there.
    fd, temporary = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(_header(compacted.generation, compacted.folding))
            json.dump(compacted.values, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, os.path.join(directory, COMPACTED_FILE))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise


@contextlib.contextmanager
def locked(directory: str, *, exclusive: bool) -> Iterator[None]:
    """Hold the compaction lock: exclusive to compact, shared to read when optimistic reads keep colliding."""
    fd = os.open(os.path.join(directory, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def _remove_leftovers(directory: str) -> None:
    """Temporary files of a writer that was killed before its ``os.replace`` (only one writer runs at a time)."""
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith(TEMPORARY_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(entry.path)


def compact(directory: str, pid: int | str) -> bool:
    """Fold the files of the exited process ``pid`` into the compacted store and delete them.

    Call it only for a process that can no longer write (gunicorn's ``child_exit``, after the worker was
    reaped). Returns whether there was anything to fold.
    """
    pid = str(pid)
    with locked(directory, exclusive=True):
        _remove_leftovers(directory)
        current = read_compacted(directory)
        # Pids a killed writer left in ``folding`` are already in the totals: finish deleting their files.
        leftover = [worker_file for folded in current.folding for worker_file in files_of(directory, folded)]
        dead = files_of(directory, pid) if pid not in current.folding else []
        if not dead and not leftover and not current.folding:
            return False
        totals: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
        for kind, kind_values in current.values.items():
            totals[kind].update(kind_values)
        for worker_file in dead:
            for key, value in read_values(worker_file.path).items():
                totals[worker_file.type][key] += value
        folded = {kind: dict(kind_values) for kind, kind_values in totals.items()}
        generation = current.generation + 1
        _write(directory, Compacted(generation, current.folding | {pid}, folded))
        for worker_file in [*dead, *leftover]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(worker_file.path)
        _write(directory, Compacted(generation + 1, frozenset(), folded))
    return bool(dead)


def compact_quietly(directory: str, pid: int) -> None:
    """:func:`compact` for a server hook: a failure is logged and leaves the files, so counts stay exact."""
    try:
        compact(directory, pid)
    except Exception:
        logger.exception("could not compact the metrics files of worker %s in %s", pid, directory)
