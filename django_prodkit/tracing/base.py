"""The tracer interface the middleware talks to; a backend (X-Ray, later OpenTelemetry) implements it."""

from __future__ import annotations

from typing import Protocol

from django.http import HttpRequest, HttpResponseBase


class RequestTrace(Protocol):
    """The trace of one request, from :meth:`Tracer.begin` to :meth:`close`. No method ever raises."""

    @property
    def trace_id(self) -> str | None:
        """The id of the trace this request belongs to (``None`` when it has none)."""

    def record_exception(self, exception: BaseException) -> None:
        """Record an exception the view raised (the response will be a 500)."""

    def finish(self, request: HttpRequest, response: HttpResponseBase) -> None:
        """Record the response, add the trace header to it and send the trace if it is sampled."""

    def close(self) -> None:
        """Restore the context as it was before :meth:`Tracer.begin`; called exactly once, always."""


class Tracer(Protocol):
    """A tracing backend: starts one :class:`RequestTrace` per request."""

    def begin(self, request: HttpRequest) -> RequestTrace:
        """Start tracing ``request`` (decide sampling, continue an incoming trace); never raises."""

    def shutdown(self) -> None:
        """Release what the backend holds (sockets); the tracer is not used afterwards."""


class NoopTrace:
    """A trace that records nothing: what a backend returns when it could not start one."""

    trace_id: str | None = None

    def record_exception(self, exception: BaseException) -> None:
        """Do nothing."""

    def finish(self, request: HttpRequest, response: HttpResponseBase) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""


NOOP_TRACE = NoopTrace()
