"""The multiprocess directory: where it is, preparing it at server start, and when counting started.

This module must not import ``prometheus_client``: that library decides between single-process and
multiprocess mode when it is first imported, from ``PROMETHEUS_MULTIPROC_DIR``, and the gunicorn hooks
import this module before the variable may be set.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time

#: The environment variable prometheus_client reads; set means multiprocess mode.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Written beside the ``*.db`` files (which prometheus_client's collector globs, so this is ignored by it).
STARTED_MARKER = "prodkit_started_at"

# The compacted store, its lock and temporary files: a previous run's totals must not reach the new counts.
_PREVIOUS_RUN = ("prodkit_compacted", ".prodkit-compacted-", ".prodkit-started-")


def multiproc_dir() -> str | None:
    """The multiprocess directory from ``PROMETHEUS_MULTIPROC_DIR``, or ``None`` for single-process mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_directory(path: str, now: float | None = None) -> None:
    """Create ``path`` if needed, delete the files of a previous run, and record the start time.

    Call it once before any worker starts (gunicorn's ``on_starting``): files left by a previous server
    would otherwise be merged into the new counts.
    """
    os.makedirs(path, mode=0o700, exist_ok=True)
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.name.endswith(".db") or entry.name.startswith(_PREVIOUS_RUN):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(entry.path)
    os.replace(_write_temporary(path, repr(time.time() if now is None else now)), os.path.join(path, STARTED_MARKER))


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
