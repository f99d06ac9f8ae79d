"""The id of the trace the current request belongs to, for log lines (no tracing SDK imported here)."""

from __future__ import annotations

from contextvars import ContextVar, Token

_current_trace_id: ContextVar[str | None] = ContextVar("prodkit_trace_id", default=None)


def get_trace_id() -> str | None:
    """The trace id of the request being handled in this context, or ``None`` (tracing off, no request)."""
    return _current_trace_id.get()


def set_trace_id(value: str | None) -> Token[str | None]:
    """Make ``value`` the current trace id; pass the returned token to :func:`reset_trace_id`."""
    return _current_trace_id.set(value)


def reset_trace_id(token: Token[str | None]) -> None:
    """Restore the trace id that was current before :func:`set_trace_id`."""
    _current_trace_id.reset(token)
