"""Which process wrote a file in the multiprocess directory, in a way that survives pid reuse, and whether it lives.

A writer is named by its pid and its start time (field 22 of ``/proc/<pid>/stat``, clock ticks since boot): a
later process that gets the same pid has another start time, so it never continues a dead writer's file and a
dead writer can be told from the live one. A zombie (exited, not yet reaped) can no longer write and counts as
dead. Without ``/proc`` (macOS) the start time is ``0`` and a writer counts as alive while its pid exists, which
only delays folding; it never loses a count.

The name also carries the writer's pid namespace (the inode of ``/proc/self/ns/pid``): a web server and a worker in
two containers that share the directory see different pids, so a writer of another namespace is never judged
from here. It counts as alive, and the processes of its own namespace fold it.

This module must not import ``prometheus_client`` (see ``multiproc``).
"""

from __future__ import annotations

import functools
import os
from typing import NamedTuple

_PROC = "/proc"
_UNKNOWN_START = "0"
# ``/proc/<pid>/stat`` states of a process that will never run again: zombie, dead.
_GONE_STATES = frozenset({"Z", "X", "x"})


class Writer(NamedTuple):
    """One process: its pid, its start time and its pid namespace (``"0"`` where the system does not say)."""

    pid: int
    start: str
    namespace: str

    @property
    def name(self) -> str:
        """How the writer appears in its files' names: ``<pid>-<start>-<namespace>``."""
        return f"{self.pid}-{self.start}-{self.namespace}"

    @classmethod
    def parse(cls, name: str) -> Writer | None:
        """The writer named ``<pid>-<start>-<namespace>``, or ``None`` for anything else."""
        parts = name.split("-")
        if len(parts) != 3 or not all(part.isdigit() for part in parts):
            return None
        return cls(int(parts[0]), parts[1], parts[2])


def _stat(pid: int) -> tuple[str, str] | None:
    """``(state, start time)`` of process ``pid`` from ``/proc``, or ``None`` when there is no such process."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as handle:
            raw = handle.read().decode("ascii", "replace")
    except OSError:
        return None  # no such process, or one this user may not inspect: the kill probe decides
    # The command name (field 2) may hold spaces and parentheses: the fields after it follow the last ")".
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], fields[19]


@functools.cache
def _has_proc() -> bool:
    return os.path.isdir(f"{_PROC}/self")


@functools.cache
def _namespace() -> str:
    """The inode of this process's pid namespace (``pid:[4026531836]``), ``"0"`` where it cannot be read."""
    try:
        link = os.readlink(f"{_PROC}/self/ns/pid")
    except OSError:
        return _UNKNOWN_START
    digits = "".join(character for character in link if character.isdigit())
    return digits or _UNKNOWN_START


def writer_of(pid: int) -> Writer | None:
    """Process ``pid`` of this pid namespace as a writer, or ``None`` when no such process runs."""
    if not _has_proc():
        return Writer(pid, _UNKNOWN_START, _UNKNOWN_START)
    found = _stat(pid)
    return None if found is None else Writer(pid, found[1], _namespace())


def current_writer() -> Writer:
    """This process as a writer."""
    pid = os.getpid()
    return writer_of(pid) or Writer(pid, _UNKNOWN_START, _namespace())


def is_alive(writer: Writer) -> bool:
    """Whether ``writer`` may still write: its pid runs (not a zombie) and started when the writer did.

    A writer of another pid namespace (another container sharing the directory) cannot be judged from here: alive.
    """
    if writer.namespace != (_namespace() if _has_proc() else _UNKNOWN_START):
        return True
    if _has_proc():
        found = _stat(writer.pid)
        if found is not None:
            return found[0] not in _GONE_STATES and writer.start == found[1]
        # Not in /proc: gone, or another user's process behind ``hidepid``, which only the kill probe tells apart.
    try:
        os.kill(writer.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process holds the pid: alive, as far as anyone can tell
    return True
