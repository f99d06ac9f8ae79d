"""The multiprocess directory: where it is, preparing it when a process starts, and when counting started.

This module must not import ``prometheus_client``: that library decides between single-process and
multiprocess mode when it is first imported, from ``PROMETHEUS_MULTIPROC_DIR``, and the gunicorn hooks
import this module before the variable may be set.
"""

from __future__ import annotations

import os
import tempfile
import time

from django_prodkit.metrics.compaction import compact_quietly

#: The environment variable prometheus_client reads; set means multiprocess mode.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Written beside the ``*.db`` files (which prometheus_client's collector globs, so this is ignored by it).
STARTED_MARKER = "prodkit_started_at"


def multiproc_dir() -> str | None:
    """The multiprocess directory from ``PROMETHEUS_MULTIPROC_DIR``, or ``None`` for single-process mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_directory(path: str, now: float | None = None) -> None:
    """Create ``path`` if needed, record the start time if none is recorded, and fold the dead writers' files.

    Any process may call it at any time (gunicorn's ``on_starting``, a Celery worker, a process's first count):
    it deletes no live process's file, so a web server restarted beside a running Celery worker loses none of
    the worker's counts. The totals continue over restarts for as long as the directory lives; a new directory
    (gunicorn's default, one per server) starts from zero.
    """
    os.makedirs(path, mode=0o700, exist_ok=True)
    marker = os.path.join(path, STARTED_MARKER)
    if os.path.islink(marker):
        os.remove(marker)  # planted: never read or written through
    claim_started(path, now)
    compact_quietly(path)


def _write_temporary(directory: str, text: str) -> str:
    # O_CREAT | O_EXCL | O_NOFOLLOW with a random name and mode 0600 (mkstemp): never through a planted link.
    fd, temporary = tempfile.mkstemp(prefix=".prodkit-started-", dir=directory)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
    return temporary


def read_started(path: str) -> float | None:
    """The start time recorded in ``path``, or ``None`` when there is none (or it is being written)."""
    try:
        fd = os.open(os.path.join(path, STARTED_MARKER), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, encoding="ascii") as handle:
        try:
            return float(handle.read())
        except ValueError:
            return None


def claim_started(path: str, now: float | None = None) -> float:
    """The recorded start time of ``path``; the first process to ask records ``now`` if there is none.

    Used when the server hooks did not prepare the directory. ``os.link`` is atomic, so concurrent
    workers agree on one value.
    """
    found = read_started(path)
    if found is not None:
        return found
    os.makedirs(path, mode=0o700, exist_ok=True)
    when = time.time() if now is None else now
    marker = os.path.join(path, STARTED_MARKER)
    temporary = _write_temporary(path, repr(when))
    try:
        os.link(temporary, marker)
    except FileExistsError:
        pass
    finally:
        os.remove(temporary)
    found = read_started(path)
    return when if found is None else found
