"""Find a command-line tool a test needs: skip without it, or fail when ``PRODKIT_REQUIRE_TOOLS=1`` (CI)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REQUIRE_TOOLS = "PRODKIT_REQUIRE_TOOLS"


def require_tool(name: str) -> str:
    """The path of ``name``, looked up beside this interpreter first (tools installed by pip), then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not installed (pip install -r requirements-test.txt provides it)"
    if os.environ.get(REQUIRE_TOOLS) == "1":
        pytest.fail(f"{message}; {REQUIRE_TOOLS}=1 requires it")
    pytest.skip(message)
