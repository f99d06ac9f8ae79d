"""The OpenTelemetry backend of the tracer interface: one SERVER span per request, spans for other work.

The request's span is made current in OpenTelemetry's own context too, so OpenTelemetry instrumentations a
project adds (database drivers, Redis) nest their spans under it. Spans other than the request's are the
SDK's own.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from django.http import HttpRequest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Decision, Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

from django_prodkit.context.http import normalize_method
from django_prodkit.context.trace import reset_trace_id, set_trace_id
from django_prodkit.tracing.base import NOOP_SPAN, NOOP_TRACE, AttributeValue, RequestTrace, Span, SpanKind
from django_prodkit.tracing.otel.config import OtelSettings, endpoint_of
from django_prodkit.tracing.otel.export import (
    ForkAwareProcessor,
    QuietExporter,
    batch_processor,
    console_exporter,
    mute_exporter_logs,
    otlp_exporter,
)
from django_prodkit.tracing.otel.propagation import extract_carrier, extract_meta, inject
from django_prodkit.tracing.otel.provider import (
    SharedProvider,
    application_provider,
    build_provider,
    build_resource,
    build_sampler,
    pending_trace_id,
    shared_provider,
)
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
    """Traces requests and other work with the OpenTelemetry SDK, exporting in batches.

    Spans go through the application's global SDK provider when it set one (its sampler and exporters, nothing
    added), else through the shared provider this package sets globally (``OTEL.GLOBAL_PROVIDER``), else
    through a private one; see :mod:`.provider`.
    """

    def __init__(self, settings: OtelSettings, endpoint: str | None, session: Any = None) -> None:
        self.processor: Any
        self.ids: IdGenerator
        self.sampler: Sampler
        self._own: ForkAwareProcessor | None = None
        self._shared: SharedProvider | None = None
        application = application_provider() if settings.global_provider else None
        # The SDK keeps a provider's processors there; the request span is handed to them at its end.
        processors = getattr(application, "_active_span_processor", None)
        if application is not None and processors is not None:
            self.target = "the application's tracer provider"
            self.provider = application
            self.sampler = application.sampler
            self.ids = application.id_generator
            self.processor = processors
            self.resource = application.resource
        else:
            mute_exporter_logs()
            exporters, self.target = build_exporters(settings.exporters, endpoint, session)
            self._own = batch_processor(exporters, settings.shutdown_timeout)
            self.processor = self._own
            shared = shared_provider(settings) if settings.global_provider else None
            if shared is None:
                self.provider, self.sampler, self.ids = build_provider(settings, self._own)
            else:
                self._shared = shared
                self.provider, self.sampler, self.ids = shared, build_sampler(settings), shared.id_generator
                shared.current_sampler.current = self.sampler
                shared.current_processor.current = self._own
            self.resource = build_resource(settings)
        self.tracer = self.provider.get_tracer(SCOPE)
        self.scope = InstrumentationScope(SCOPE)
        self.propagators = settings.propagators
        self.trust_incoming = settings.trust_incoming
        self._warned = False

    def begin(self, request: HttpRequest) -> RequestTrace:
        """Start the request's SERVER span, continuing an incoming trace when its headers are valid.

        With incoming sampling untrusted, the decision is the root sampler's on a trace id of our own random
        bits: neither the client's trace id nor its flags change it. The incoming trace id and parent are
        kept, so the request still joins the caller's trace.
        """
        try:
            context, trace_id = extract_meta(request.META, self.propagators)
            method = normalize_method(request.method)
            attributes: dict[str, Any] = {"http.request.method": method}
            parent = trace.get_current_span(context).get_span_context() if context is not None else None
            if parent is not None:
                trace_id = parent.trace_id
            if trace_id is None:
                trace_id = self.ids.generate_trace_id()
                decision = self.sampler.should_sample(_ROOT, trace_id, method, _SERVER, attributes)
            elif self.trust_incoming:
                decision = self.sampler.should_sample(context or _ROOT, trace_id, method, _SERVER, attributes)
            else:
                decision = self.sampler.should_sample(_ROOT, _own_random_id(), method, _SERVER, attributes)
            flags = _SAMPLED if decision.decision is Decision.RECORD_AND_SAMPLE else _NOT_SAMPLED
            state = parent.trace_state if parent is not None and not self.trust_incoming else decision.trace_state
            span_context = SpanContext(trace_id, self.ids.generate_span_id(), False, flags, state)
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
        """Export what this process has queued, then stop (gunicorn's ``worker_exit``, tests); bounded in time.

        The application's provider is left to the application.
        """
        shared = self._shared
        if shared is not None and shared.current_processor.current is self._own:
            shared.current_processor.current = None
            shared.current_sampler.current = ALWAYS_OFF
        if self._own is not None:
            self._own.shutdown()

    def warn_once(self, message: str) -> None:
        """Log ``message`` the first time only, without a traceback (tracing never fails a request)."""
        if not self._warned:
            self._warned = True
            logger.warning("OpenTelemetry tracing: %s.", message)


def _own_random_id() -> int:
    """A trace id of fresh random bits, for a decision the client cannot steer (never zero)."""
    return random.getrandbits(128) or 1


def build_exporters(names: Sequence[str], endpoint: str | None, session: Any) -> tuple[list[SpanExporter], str]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names and where they send (for the warnings)."""
    exporters: list[SpanExporter] = []
    targets = []
    for name in names:
        if name == "otlp":
            exporter, target = otlp_exporter(endpoint, session)
            exporters.append(QuietExporter(exporter, target))
            targets.append(target)
        elif name == "console":
            exporters.append(console_exporter())
            targets.append("standard output")
    return exporters, " and ".join(targets) or "nowhere"


def build_tracer(settings: OtelSettings) -> OTelTracer:
    """The tracer for ``settings``: the endpoint resolved, SigV4 signing set up when asked for."""
    if not settings.sigv4:
        return OTelTracer(settings, endpoint_of(settings, os.environ, None))
    from django_prodkit.tracing.otel.sigv4 import botocore_region, signing_session

    region = settings.region or botocore_region()
    if region is None:
        raise ValueError("OTEL.AWS_SIGV4 is on but no AWS region is configured (OTEL.AWS_REGION, AWS_REGION).")
    return OTelTracer(settings, endpoint_of(settings, os.environ, region), signing_session(region))
