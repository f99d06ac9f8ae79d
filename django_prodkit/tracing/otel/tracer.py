"""The OpenTelemetry backend of the tracer interface: one SERVER span per request, spans for other work.

The request's span is made current in OpenTelemetry's own context too, so OpenTelemetry instrumentations a
project adds (database drivers, Redis) nest their spans under it. Spans other than the request's are the
SDK's own.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, MutableMapping
from typing import Any

from django.http import HttpRequest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

from django_prodkit.context.http import normalize_method
from django_prodkit.context.trace import reset_trace_id, set_trace_id
from django_prodkit.tracing.base import NOOP_SPAN, NOOP_TRACE, AttributeValue, RequestTrace, Span, SpanKind
from django_prodkit.tracing.otel.config import OtelSettings, endpoint_of
from django_prodkit.tracing.otel.export import QuietExporter, batch_processor, mute_exporter_logs, otlp_exporter
from django_prodkit.tracing.otel.propagation import extract_carrier, extract_meta, inject
from django_prodkit.tracing.otel.provider import build_provider, pending_trace_id
from django_prodkit.tracing.otel.request import OTelRequestTrace

logger = logging.getLogger("django_prodkit.tracing")

KINDS = {
    "client": trace.SpanKind.CLIENT,
    "producer": trace.SpanKind.PRODUCER,
    "consumer": trace.SpanKind.CONSUMER,
    "internal": trace.SpanKind.INTERNAL,
}

#: The instrumentation scope of every span this package makes.
SCOPE = "django_prodkit"

_ROOT = Context()
_SERVER = trace.SpanKind.SERVER
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)


class OTelSpan:
    """A span for work other than the request (an outbound call, a task); current until :meth:`end`."""

    __slots__ = ("_otel_token", "_span", "_trace_token", "_tracer")

    def __init__(self, tracer: OTelTracer, span: Any) -> None:
        self._tracer = tracer
        self._span = span
        span_context = span.get_span_context()
        self._trace_token = set_trace_id(format(span_context.trace_id, "032x"), format(span_context.span_id, "016x"))
        self._otel_token = otel_context.attach(trace.set_span_in_context(span))

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Set an attribute."""
        try:
            self._span.set_attribute(key, value)
        except Exception:
            self._tracer.warn_once("could not set a span attribute")

    def record_exception(self, exception: BaseException) -> None:
        """Add an ``exception`` event and mark the span as an error."""
        try:
            self._span.record_exception(exception)
            self._span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
        except Exception:
            self._tracer.warn_once("could not record an exception on a span")

    def end(self, *, error: bool = False) -> None:
        """End the span and restore the context that was current before it."""
        try:
            if error:
                self._span.set_status(Status(StatusCode.ERROR))
            self._span.end()
        except Exception:
            self._tracer.warn_once("could not end a span")
        try:
            otel_context.detach(self._otel_token)
            reset_trace_id(self._trace_token)
        except ValueError:
            # Ended in another context than it started in (a callback thread); nothing to restore there.
            pass


class OTelTracer:
    """Traces requests and other work with the OpenTelemetry SDK, exporting over OTLP/HTTP in batches."""

    def __init__(self, settings: OtelSettings, endpoint: str | None, session: Any = None) -> None:
        mute_exporter_logs()
        exporter, target = otlp_exporter(endpoint, session)
        self.target = target
        self.processor = batch_processor(QuietExporter(exporter, target))
        self.provider, self.sampler, self.ids = build_provider(settings, self.processor)
        self.tracer = self.provider.get_tracer(SCOPE)
        self.resource = self.provider.resource
        self.scope = InstrumentationScope(SCOPE)
        self.propagators = settings.propagators
        self._warned = False

    def begin(self, request: HttpRequest) -> RequestTrace:
        """Start the request's SERVER span, continuing an incoming trace when its headers are valid."""
        try:
            context, trace_id = extract_meta(request.META, self.propagators)
            method = normalize_method(request.method)
            attributes: dict[str, Any] = {"http.request.method": method}
            parent = trace.get_current_span(context).get_span_context() if context is not None else None
            if parent is not None:
                trace_id = parent.trace_id
            elif trace_id is None:
                trace_id = self.ids.generate_trace_id()
            decision = self.sampler.should_sample(context or _ROOT, trace_id, method, _SERVER, attributes)
            flags = _SAMPLED if decision.decision is Decision.RECORD_AND_SAMPLE else _NOT_SAMPLED
            span_context = SpanContext(trace_id, self.ids.generate_span_id(), False, flags, decision.trace_state)
            return OTelRequestTrace(self, span_context, parent, attributes)
        except Exception:
            self.warn_once("could not start a span; the request is not traced")
            return NOOP_TRACE

    def inject(self, carrier: MutableMapping[str, str]) -> None:
        """Write the current span's context (``traceparent``, and ``X-Amzn-Trace-Id`` if configured)."""
        try:
            inject(trace.get_current_span().get_span_context(), carrier, self.propagators)
        except Exception:
            self.warn_once("could not write the trace headers")

    def start_span(
        self,
        name: str,
        kind: SpanKind,
        *,
        carrier: Mapping[str, str] | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> Span:
        """A span under the context in ``carrier``, else under the current span; see :class:`Tracer`."""
        try:
            context, trace_id = extract_carrier(carrier, self.propagators) if carrier else (None, None)
            if context is None and trace_id is None and not trace.get_current_span().get_span_context().is_valid:
                if kind != "consumer":
                    return NOOP_SPAN
                context = _ROOT
            token = pending_trace_id.set(trace_id) if trace_id is not None else None
            try:
                parent = _ROOT if trace_id is not None else context
                span = self.tracer.start_span(name, parent, KINDS[kind], attributes)
            finally:
                if token is not None:
                    pending_trace_id.reset(token)
            return OTelSpan(self, span)
        except Exception:
            self.warn_once("could not start a span; the work is not traced")
            return NOOP_SPAN

    def shutdown(self) -> None:
        """Export what this process has queued, then stop (gunicorn's ``worker_exit``, tests)."""
        try:
            self.provider.shutdown()
        except Exception:
            self.warn_once("could not flush the spans at shutdown")

    def warn_once(self, message: str) -> None:
        """Log ``message`` the first time only, without a traceback (tracing never fails a request)."""
        if not self._warned:
            self._warned = True
            logger.warning("OpenTelemetry tracing: %s.", message)


def build_tracer(settings: OtelSettings) -> OTelTracer:
    """The tracer for ``settings``: the endpoint resolved, SigV4 signing set up when asked for."""
    if not settings.sigv4:
        return OTelTracer(settings, endpoint_of(settings, os.environ, None))
    from django_prodkit.tracing.otel.sigv4 import botocore_region, signing_session

    region = settings.region or botocore_region()
    if region is None:
        raise ValueError("OTEL.AWS_SIGV4 is on but no AWS region is configured (OTEL.AWS_REGION, AWS_REGION).")
    return OTelTracer(settings, endpoint_of(settings, os.environ, region), signing_session(region))
