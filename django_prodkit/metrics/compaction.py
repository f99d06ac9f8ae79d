"""Compaction: the values of dead writers folded into one file, so the directory stays bounded.

A writer is dead when its process has exited (see ``writers``: pid and start time, so a reused pid is another
writer). Whoever notices first folds it: gunicorn's ``child_exit``, a Celery pool child on its way out (its own
files), a process starting up, or a reader that finds a dead writer's files. Folding adds every value of the dead
writers' files (only ours: other libraries' ``*.db`` files are never read or touched) to ``prodkit_compacted``
and deletes the files. Under the exclusive lock, so each dead writer is folded exactly once, and with a
hand-over that keeps every read exact (docs/metrics.md, "Compaction"):

1. the new totals are written together with the dead writers in ``folding`` (temporary file, fsync,
   ``os.replace``: a reader sees the old file or the new one, never a mix), and the generation goes up;
2. the writers' files are deleted;
3. the file is written again with ``folding`` empty.

A reader takes the compacted file, reads the writers' files skipping those in ``folding``, and then checks
that the generation has not changed; if it has, a compaction ran in between and it reads again (after a few
collisions, holding the lock shared, which no compaction can pass). After any prefix of these steps (a
folder killed at any point) a read counts each value exactly once. No live writer's file is ever deleted.

Each version carries the store's random id and its generation; a reader caches the parsed totals by those two,
never by inode, size or mtime, which a new version can share with an old one (ext4 reuses inodes, and mtimes
are coarse on many filesystems).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from typing import NamedTuple

from django_prodkit.metrics.files import WorkerFile, read_values, summed_files
from django_prodkit.metrics.writers import Writer, is_alive

#: The compacted store; not ``*.db``, so prometheus_client's own collector leaves it alone.
COMPACTED_FILE = "prodkit_compacted"
#: Held (``flock``) exclusively by whoever writes the compacted store, so two masters sharing a directory (a
#: ``USR2`` upgrade with a directory you set) never lose each other's update; shared by a reader that lost
#: the race against compactions several times in a row, so it always finishes.
LOCK_FILE = "prodkit_compaction.lock"
TEMPORARY_PREFIX = ".prodkit-compacted-"
_MAGIC = "prodkit-compacted"
_FORMAT = "2"
# Format 1 (before writers were named by start time) had no store id; its totals are read and carried on.
_FORMATS = ("1", _FORMAT)

logger = logging.getLogger("django_prodkit.metrics")

#: Values by file type, then by prometheus_client's key.
Values = dict[str, dict[str, float]]


class Compacted(NamedTuple):
    """One version of the compacted store."""

    store: str
    generation: int
    folding: frozenset[str]
    values: Values

    @property
    def version(self) -> tuple[str, int]:
        """What names this version's content: the store's id and the generation."""
        return self.store, self.generation


EMPTY = Compacted("", 0, frozenset(), {})

# The last version parsed, by its store id and generation: most reads find it unchanged.
_parsed: Compacted | None = None


def _header(compacted: Compacted) -> str:
    folding = ",".join(sorted(compacted.folding)) or "-"
    return f"{_MAGIC} {_FORMAT} {compacted.store} {compacted.generation} {folding}\n"


def _parse_header(line: str) -> tuple[str, int, frozenset[str]]:
    fields = line.split()
    if len(fields) == 4 and fields[:2] == [_MAGIC, "1"]:
        fields.insert(2, "")
    if len(fields) != 5 or fields[0] != _MAGIC or fields[1] not in _FORMATS:
        raise ValueError(f"not a compacted store of format {_FORMAT}: {line[:80]!r}")
    _magic, _version, store, generation, folding = fields
    return store, int(generation), frozenset() if folding == "-" else frozenset(folding.split(","))


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
        store, generation, folding = _parse_header(handle.readline())
        cached = _parsed
        if cached is not None and cached.version == (store, generation) and cached.folding == folding and store:
            return cached
        raw = json.loads(handle.read())
    compacted = Compacted(store, generation, folding, {kind: dict(values) for kind, values in raw.items()})
    _parsed = compacted
    return compacted


def read_version(directory: str) -> tuple[str, int]:
    """Only the store id and generation of the compacted store (its first line), for a reader's final check."""
    fd = _open(directory)
    if fd is None:
        return EMPTY.version
    with os.fdopen(fd, "r", encoding="utf-8") as handle:
        return _parse_header(handle.readline())[:2]


def _write(directory: str, compacted: Compacted) -> None:
    # mkstemp opens with O_CREAT | O_EXCL | O_NOFOLLOW and mode 0600; os.replace renames over the name
    # without following a link planted there.
    fd, temporary = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(_header(compacted))
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


def dead_writers(files: list[WorkerFile], skip: frozenset[str] = frozenset()) -> set[str]:
    """The writers of ``files`` (not in ``skip``) whose processes can no longer write."""
    dead = set()
    for writer_name in {worker_file.writer for worker_file in files} - skip:
        writer = Writer.parse(writer_name)
        if writer is not None and not is_alive(writer):
            dead.add(writer_name)
    return dead


def compact(directory: str, *, retired: str | None = None) -> int:
    """Fold the files of every dead writer in ``directory`` into the compacted store and delete them.

    ``retired`` names a writer that is alive but has closed its files for good (the caller itself, see
    ``ProcessFiles.retire``): it is folded too. Returns how many writers were folded.
    """
    with locked(directory, exclusive=True):
        _remove_leftovers(directory)
        current = read_compacted(directory)
        files = summed_files(directory)
        # Writers a killed folder left in ``folding`` are already in the totals: finish deleting their files.
        leftover = [worker_file for worker_file in files if worker_file.writer in current.folding]
        dead = dead_writers(files, current.folding)
        if retired is not None and retired not in current.folding:
            dead.add(retired)
        folded_files = [worker_file for worker_file in files if worker_file.writer in dead]
        if not folded_files and not leftover and not current.folding:
            return 0
        totals: defaultdict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
        for kind, kind_values in current.values.items():
            totals[kind].update(kind_values)
        for worker_file in folded_files:
            for key, value in read_values(worker_file.path).items():
                totals[worker_file.type][key] += value
        folded = {kind: dict(kind_values) for kind, kind_values in totals.items()}
        store = current.store or secrets.token_hex(8)
        generation = current.generation + 1
        _write(directory, Compacted(store, generation, current.folding | dead, folded))
        for worker_file in [*folded_files, *leftover]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(worker_file.path)
        _write(directory, Compacted(store, generation + 1, frozenset(), folded))
    return len({worker_file.writer for worker_file in folded_files})


def compact_quietly(directory: str, *, retired: str | None = None) -> None:
    """:func:`compact` for a hook or a startup: a failure is logged and leaves the files, so counts stay exact."""
    try:
        compact(directory, retired=retired)
    except Exception:
        logger.exception("could not fold the metrics files of exited processes in %s", directory)
