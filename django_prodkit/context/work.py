"""The fields that name the work being done (``task_id``, ``task_name``, ``command_id``), for log lines.

Written by the task integrations and the command runner, read by the log formatter on every line.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token

_current: ContextVar[Mapping[str, str] | None] = ContextVar("prodkit_work_fields", default=None)


def get_work_fields() -> Mapping[str, str] | None:
    """The fields of the task or command running in this context, or ``None`` (a request, or nothing)."""
    return _current.get()


def set_work_fields(fields: Mapping[str, str] | None) -> Token[Mapping[str, str] | None]:
    """Make ``fields`` current; pass the returned token to :func:`reset_work_fields`."""
    return _current.set(fields)


def reset_work_fields(token: Token[Mapping[str, str] | None]) -> None:
    """Restore the fields that were current before :func:`set_work_fields`."""
    _current.reset(token)
