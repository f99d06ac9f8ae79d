"""The ids of the trace and span current in this context, for log lines (no tracing SDK imported here)."""

from __future__ import annotations

from contextvars import ContextVar, Token

_current: ContextVar[tuple[str, str | None] | None] = ContextVar("prodkit_trace_context", default=None)


def get_trace_id() -> str | None:
    """The trace id of the work being done in this context, or ``None`` (tracing off, no request or task)."""
    current = _current.get()
    return None if current is None else current[0]


def get_span_id() -> str | None:
    """The id of the current span (X-Ray: segment or subsegment), or ``None``."""
    current = _current.get()
    return None if current is None else current[1]


def set_trace_id(value: str | None, span_id: str | None = None) -> Token[tuple[str, str | None] | None]:
    """Make ``value`` (and ``span_id``) current; pass the returned token to :func:`reset_trace_id`."""
    return _current.set(None if value is None else (value, span_id))


def reset_trace_id(token: Token[tuple[str, str | None] | None]) -> None:
    """Restore the trace context that was current before :func:`set_trace_id`."""
    _current.reset(token)


# Set on the request by the tracing middleware, so code that runs after the trace's context was restored (the
# access line, above it in MIDDLEWARE) still finds the request's trace id.
_REQUEST_TRACE_ID = "_prodkit_trace_id"


def publish_request_trace_id(request: object, trace_id: str | None) -> None:
    """Record ``trace_id`` as the trace of ``request`` for the rest of its life."""
    request.__dict__[_REQUEST_TRACE_ID] = trace_id


def request_trace_id(request: object) -> str | None:
    """The trace id published for ``request``, or ``None`` (not traced)."""
    value: str | None = request.__dict__.get(_REQUEST_TRACE_ID)
    return value
