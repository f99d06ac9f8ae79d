"""Which process exports, and what it must remember across a handover.

Every process that serves requests runs an export thread, but only the one holding an exclusive ``flock`` on
a file in ``PROMETHEUS_MULTIPROC_DIR`` exports: one process per server, so a host never sends the same counts
twice nor a series per worker. The kernel releases the lock when its holder exits (a recycled or killed
worker), and another worker takes it at its next tick. A delta export's baseline is written beside the lock,
so the next holder continues where the last one stopped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from typing import Any

LOCK_NAME = "prodkit_otlp_export.lock"
STATE_NAME = "prodkit_otlp_export_state.json"


class Leadership:
    """The export lock of one directory (every process is its own leader without a directory)."""

    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        self._fd: int | None = None
        self._memory: dict[str, Any] | None = None

    @property
    def held(self) -> bool:
        """Whether this process exports."""
        return self.directory is None or self._fd is not None

    def claim(self) -> bool:
        """Take the lock if no other process holds it; keep it until :meth:`release` or exit."""
        if self.held:
            return True
        assert self.directory is not None
        path = os.path.join(self.directory, LOCK_NAME)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError:
            return False  # the directory went away: the server is shutting down
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        """Let another process export (closing the file releases the lock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def load(self, started_at: float) -> dict[str, Any] | None:
        """The state the previous holder saved for this server run, or ``None``."""
        if self.directory is None:
            return self._memory
        try:
            fd = os.open(os.path.join(self.directory, STATE_NAME), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, encoding="utf-8") as handle:
                state = json.load(handle)
        except (OSError, ValueError):
            return None
        # A file left by an earlier run of the server (its start time differs) is not ours.
        if not isinstance(state, dict) or state.get("started_at") != started_at:
            return None
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Keep ``state`` for the next holder (atomically: a reader sees the old or the new file)."""
        if self.directory is None:
            self._memory = state
            return
        fd, temporary = tempfile.mkstemp(prefix=".prodkit-otlp-", dir=self.directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(state, handle)
            os.replace(temporary, os.path.join(self.directory, STATE_NAME))
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(temporary)
            raise
