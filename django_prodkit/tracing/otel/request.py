"""One request's SERVER span, recorded without the SDK's ``Span`` and handed to the processor at the end.

The SDK's ``Span`` validates every attribute under a lock as it is set; a request's attributes are few and
already bounded here, so the span is kept as plain values and built once, as the SDK's ``ReadableSpan``
that its batch processor and OTLP exporter take. In OpenTelemetry's context the request is a
non-recording span with the same ids, so the spans of outbound calls, tasks and other instrumentations
are its children.
"""

from __future__ import annotations

import time
import traceback
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponseBase
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode

from django_prodkit.context.http import UNMATCHED_ROUTE, route_of
from django_prodkit.context.ids import get_request_id
from django_prodkit.context.trace import reset_trace_id, set_trace_id
from django_prodkit.tracing.base import AttributeValue
from django_prodkit.tracing.document import MAX_HEADER_VALUE_LENGTH, MAX_URL_LENGTH, request_host

if TYPE_CHECKING:
    from django_prodkit.tracing.otel.tracer import OTelTracer

_ATTRIBUTE_TYPES = (str, bool, int, float)
_ERROR = Status(StatusCode.ERROR)


def exception_event(exception: BaseException) -> Event:
    """The ``exception`` event of the semantic conventions, as the SDK's ``Span.record_exception`` makes it."""
    kind = type(exception)
    name = kind.__qualname__ if kind.__module__ in (None, "builtins") else f"{kind.__module__}.{kind.__qualname__}"
    attributes = {
        "exception.type": name,
        "exception.message": str(exception),
        "exception.stacktrace": "".join(traceback.format_exception(kind, exception, exception.__traceback__)),
        "exception.escaped": "False",
    }
    return Event("exception", attributes)


class OTelRequestTrace:
    """A request's span, current (logs, outbound calls, other instrumentations) until :meth:`close`."""

    __slots__ = (
        "_attributes",
        "_context",
        "_events",
        "_otel_token",
        "_parent",
        "_start",
        "_status",
        "_trace_token",
        "_tracer",
        "trace_id",
    )

    def __init__(
        self, tracer: OTelTracer, context: SpanContext, parent: SpanContext | None, attributes: dict[str, Any]
    ) -> None:
        self._tracer = tracer
        self._context = context
        self._parent = parent
        self._start = time.time_ns()
        # Only a sampled span keeps anything.
        self._attributes: dict[str, Any] | None = attributes if context.trace_flags.sampled else None
        self._events: list[Event] = []
        self._status: Status | None = None
        self.trace_id: str | None = format(context.trace_id, "032x")
        self._trace_token = set_trace_id(self.trace_id, format(context.span_id, "016x"))
        self._otel_token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(context)))

    def record_exception(self, exception: BaseException) -> None:
        """Add an ``exception`` event and mark the span as an error."""
        if self._attributes is not None:
            try:
                self._events.append(exception_event(exception))
                self._status = Status(StatusCode.ERROR, type(exception).__name__)
            except Exception:
                self._tracer.warn_once("could not record an exception on a span")

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Set an attribute on the request's span (a value of another type is ignored)."""
        if self._attributes is not None and isinstance(key, str) and isinstance(value, _ATTRIBUTE_TYPES):
            self._attributes[key] = value

    def finish(self, request: HttpRequest, response: HttpResponseBase) -> None:
        """Name the span after the route, add the HTTP attributes, and queue it for export."""
        attributes = self._attributes
        if attributes is None:
            return
        try:
            name = _complete(attributes, request, response)
            status = int(response.status_code)
            if self._status is None and status >= 500:
                self._status = _ERROR
            tracer = self._tracer
            span = ReadableSpan(
                name=name,
                context=self._context,
                parent=self._parent,
                resource=tracer.resource,
                attributes=attributes,
                events=self._events,
                kind=trace.SpanKind.SERVER,
                status=self._status or Status(StatusCode.UNSET),
                start_time=self._start,
                end_time=time.time_ns(),
                instrumentation_scope=tracer.scope,
            )
            tracer.processor.on_end(span)
        except Exception:
            self._tracer.warn_once("could not complete a span; it was dropped")

    def close(self) -> None:
        """Restore the context."""
        otel_context.detach(self._otel_token)
        reset_trace_id(self._trace_token)


def _complete(attributes: dict[str, Any], request: HttpRequest, response: HttpResponseBase) -> str:
    """Add the request's and response's attributes; return the span's name (``METHOD route``)."""
    meta = request.META
    method = attributes["http.request.method"]
    route = route_of(request)
    attributes["url.path"] = request.path[:MAX_URL_LENGTH]
    attributes["url.scheme"] = request.scheme or "http"
    attributes["server.address"] = request_host(request)
    attributes["http.response.status_code"] = int(response.status_code)
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    client = str(forwarded).split(",", 1)[0].strip() if forwarded else meta.get("REMOTE_ADDR")
    if client:
        attributes["client.address"] = str(client)[:MAX_HEADER_VALUE_LENGTH]
    agent = meta.get("HTTP_USER_AGENT")
    if agent:
        attributes["user_agent.original"] = str(agent)[:MAX_HEADER_VALUE_LENGTH]
    request_id = getattr(request, "request_id", None) or get_request_id()
    if request_id:
        attributes["request_id"] = str(request_id)
    if route == UNMATCHED_ROUTE:
        return str(method)
    attributes["http.route"] = route
    return f"{method} {route}"
