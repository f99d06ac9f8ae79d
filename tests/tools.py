"""Helpers for tests that need a Debian binary (promtool, chromium, nginx)."""

from __future__ import annotations

import os
import shutil

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
