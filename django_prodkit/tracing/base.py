"""The tracer interface the middleware, outbound clients and task integrations talk to; each backend implements it."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Literal, Protocol

from django.http import HttpRequest, HttpResponseBase

from django_prodkit.context.figures import query_figures

#: A span attribute's value, as OpenTelemetry and X-Ray annotations/metadata accept it.
AttributeValue = str | int | float | bool

#: What a span that is not a request's is for: an outbound call, a task enqueued, a task run, other work.
SpanKind = Literal["client", "producer", "consumer", "internal"]


#: The span attributes that carry the request's database figures (read from the request's context).
QUERY_COUNT_ATTRIBUTE = "db.query_count"
DURATION_ATTRIBUTE = "db.duration_ms"


class Span(Protocol):
    """A span (OpenTelemetry) or subsegment (X-Ray) of work other than the request itself. No method ever raises."""

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Attach an attribute (X-Ray: metadata)."""

    def record_exception(self, exception: BaseException) -> None:
        """Record an exception (as an ``exception`` event) and mark the span as an error."""

    def end(self, *, error: bool = False) -> None:
        """End the span (marked as an error when ``error``) and restore the context that was current before it."""


class RequestTrace(Protocol):
    """The trace of one request, from :meth:`Tracer.begin` to :meth:`close`. No method ever raises."""

    @property
    def trace_id(self) -> str | None:
        """The id of the trace this request belongs to (``None`` when it has none)."""

    def record_exception(self, exception: BaseException) -> None:
        """Record an exception the view raised (the response will be a 500)."""

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Attach an attribute to the request's span (for example the database figures)."""

    def finish(self, request: HttpRequest, response: HttpResponseBase) -> None:
        """Record the response, add the trace header to it and send the trace if it is sampled."""

    def close(self) -> None:
        """Restore the context as it was before :meth:`Tracer.begin`; called exactly once, always."""


class Tracer(Protocol):
    """A tracing backend: starts one :class:`RequestTrace` per request."""

    def begin(self, request: HttpRequest) -> RequestTrace:
        """Start tracing ``request`` (decide sampling, continue an incoming trace); never raises."""

    def inject(self, carrier: MutableMapping[str, str]) -> None:
        """Write the current trace context's headers into ``carrier`` (nothing when none is current); never raises."""

    def start_span(
        self,
        name: str,
        kind: SpanKind,
        *,
        carrier: Mapping[str, str] | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> Span:
        """Start a span, current until :meth:`Span.end`; never raises.

        Its parent is the context in ``carrier`` (headers a task or request brought) when given and valid,
        else the current span; with neither, a consumer span starts a trace of its own (sampled as the backend
        samples roots) and any other kind records nothing.
        """

    def shutdown(self) -> None:
        """Release what the backend holds (sockets); the tracer is not used afterwards."""


class NoopTrace:
    """A trace that records nothing: what a backend returns when it could not start one."""

    trace_id: str | None = None

    def record_exception(self, exception: BaseException) -> None:
        """Do nothing."""

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Do nothing."""

    def finish(self, request: HttpRequest, response: HttpResponseBase) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""


NOOP_TRACE = NoopTrace()


class NoopSpan:
    """A span that records nothing: unsampled work, or a backend that could not start one."""

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Do nothing."""

    def record_exception(self, exception: BaseException) -> None:
        """Do nothing."""

    def end(self, *, error: bool = False) -> None:
        """Do nothing."""


NOOP_SPAN = NoopSpan()


def add_query_figures(trace: RequestTrace) -> None:
    """Put the request's database figures, published on its context, on its trace (before it is finished)."""
    figures = query_figures()
    if figures is not None:
        trace.set_attribute(QUERY_COUNT_ATTRIBUTE, figures.count)
        trace.set_attribute(DURATION_ATTRIBUTE, figures.milliseconds)
