"""Helpers for tests that need a Debian binary (promtool, chromium, nginx), or real processes to stand for writers."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

#: Set in CI: a missing tool fails the test instead of skipping it.
REQUIRE_TOOLS = "PRODKIT_REQUIRE_TOOLS"


def require_tool(name: str) -> str:
    """The path of ``name``; skips the test when it is missing, or fails when ``PRODKIT_REQUIRE_TOOLS=1``."""
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not installed (Debian package providing it is needed for this test)"
    if os.environ.get(REQUIRE_TOOLS) == "1":
        pytest.fail(f"{message}; {REQUIRE_TOOLS}=1 requires it")
    pytest.skip(message)


class Sleepers:
    """Real processes that count as live writers until the test kills them: their names are pid and start time."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, count: int) -> list[str]:
        from django_prodkit.metrics.writers import writer_of

        started = [subprocess.Popen(["sleep", "300"]) for _ in range(count)]
        self.processes += started
        writers = [writer_of(process.pid) for process in started]
        return [writer.name for writer in writers if writer is not None]

    def kill(self, name: str) -> None:
        for process in self.processes:
            if name.startswith(f"{process.pid}-"):
                process.kill()
                process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait(timeout=10)
