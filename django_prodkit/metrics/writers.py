"""Which process wrote a file in the multiprocess directory, in a way that survives pid reuse, and whether it lives.

A writer is named by its pid and its start time (field 22 of ``/proc/<pid>/stat``, clock ticks since boot): a
later process that gets the same pid has another start time, so it never continues a dead writer's file and a
dead writer can be told from the live one. A zombie (exited, not yet reaped) can no longer write and counts as
dead. Without ``/proc`` (macOS) the start time is ``0`` and a writer counts as alive while its pid exists, which
only delays folding; it never loses a count.

This module must not import ``prometheus_client`` (see ``multiproc``).
"""

from __future__ import annotations

import os
from typing import NamedTuple

_PROC = "/proc"
_UNKNOWN_START = "0"
# ``/proc/<pid>/stat`` states of a process that will never run again: zombie, dead.
_GONE_STATES = frozenset({"Z", "X", "x"})


class Writer(NamedTuple):
    """One process: its pid and its start time (``"0"`` where the system does not say)."""

    pid: int
    start: str

    @property
    def name(self) -> str:
        """How the writer appears in its files' names: ``<pid>-<start>``."""
        return f"{self.pid}-{self.start}"

    @classmethod
    def parse(cls, name: str) -> Writer | None:
        """The writer named ``<pid>-<start>``, or ``None`` for anything else."""
        pid, _, start = name.partition("-")
        if not (pid.isdigit() and start.isdigit()):
            return None
        return cls(int(pid), start)


def _stat(pid: int) -> tuple[str, str] | None:
    """``(state, start time)`` of process ``pid`` from ``/proc``, or ``None`` when there is no such process."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as handle:
            raw = handle.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: the fields after it follow the last ")".
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], fields[19]


def _has_proc() -> bool:
    return os.path.isdir(f"{_PROC}/self")


def writer_of(pid: int) -> Writer | None:
    """Process ``pid`` as a writer, or ``None`` when no such process runs."""
    if not _has_proc():
        return Writer(pid, _UNKNOWN_START)
    found = _stat(pid)
    return None if found is None else Writer(pid, found[1])


def current_writer() -> Writer:
    """This process as a writer."""
    pid = os.getpid()
    return writer_of(pid) or Writer(pid, _UNKNOWN_START)


def is_alive(writer: Writer) -> bool:
    """Whether ``writer`` may still write: its pid runs (not a zombie) and started when the writer did."""
    if _has_proc():
        found = _stat(writer.pid)
        if found is None or found[0] in _GONE_STATES:
            return False
        return writer.start == found[1]
    try:
        os.kill(writer.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process holds the pid: alive, as far as anyone can tell
    return True
