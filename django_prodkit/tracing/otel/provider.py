"""The OpenTelemetry SDK objects of one configuration: resource, sampler, id generator and tracer provider.

Which provider: when the application already set an SDK tracer provider globally (``opentelemetry-instrument``,
its own setup code), that one, with its sampler and exporters; else, unless ``OTEL.GLOBAL_PROVIDER`` is off,
one shared provider this package sets globally once per process, so the standard API
(``trace.get_tracer(...)``) and every ``opentelemetry-instrumentation-*`` package export through it. The
global provider can be set only once, and the tracer is rebuilt when the configuration changes, so the
shared provider's sampler and span processor are stand-ins for the current configuration's. Its resource is
the first configuration's (the request spans carry the current one).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from django_prodkit.tracing.otel.config import OtelSettings

#: A trace id the next root span must use: an ``X-Amzn-Trace-Id`` with a ``Root`` and no ``Parent`` (what an
#: ALB or CloudFront sends) still names the trace the request belongs to.
pending_trace_id: ContextVar[int | None] = ContextVar("prodkit_otel_pending_trace_id", default=None)


class JoiningIdGenerator(RandomIdGenerator):
    """Trace ids X-Ray accepts everywhere: the epoch seconds in the first 32 bits, then 96 random bits.

    That is a valid W3C id too, and what the collector's ``awsxray`` exporter needs (it drops other ids).
    A root span whose request arrived with an X-Ray trace id and no parent gets that id.
    """

    def generate_trace_id(self) -> int:
        """The pending trace id if there is one, else a new time-prefixed one."""
        pending = pending_trace_id.get()
        if pending is not None:
            return pending
        return (int(time.time()) << 96) | random.getrandbits(96)


def build_sampler(settings: OtelSettings) -> Sampler:
    """The sampler ``OTEL_TRACES_SAMPLER`` names; a remote "sampled" flag counts only when it is trusted.

    A request's own decision with untrusted incoming sampling is made in the tracer, before this sampler
    sees a remote parent; this one decides for the spans under it and for work that brings a context.
    """
    name = settings.sampler
    base = name.removeprefix("parentbased_")
    root: Sampler
    if base == "always_on":
        root = ALWAYS_ON
    elif base == "always_off":
        root = ALWAYS_OFF
    else:
        root = TraceIdRatioBased(settings.ratio)
    if not name.startswith("parentbased_"):
        return root
    return ParentBased(root, remote_parent_sampled=ALWAYS_ON if settings.trust_incoming else root)


def build_resource(settings: OtelSettings) -> Resource:
    """``service.name`` from ``OTEL.SERVICE_NAME``, else the standard variables, else ``SERVICE_NAME``."""
    if settings.service_name:
        return Resource.create({SERVICE_NAME: settings.service_name})
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: settings.default_service_name}))
    return resource


def build_provider(settings: OtelSettings, processor: SpanProcessor) -> tuple[TracerProvider, Sampler, IdGenerator]:
    """A private tracer provider exporting through ``processor``, its sampler and ids."""
    sampler = build_sampler(settings)
    ids = JoiningIdGenerator()
    provider = TracerProvider(
        sampler=sampler, resource=build_resource(settings), id_generator=ids, shutdown_on_exit=False
    )
    provider.add_span_processor(processor)
    return provider, sampler, ids


class CurrentSampler(Sampler):
    """The shared provider's sampler: the current configuration's, or nothing sampled while tracing is off."""

    def __init__(self) -> None:
        self.current: Sampler = ALWAYS_OFF

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """What the current configuration's sampler decides."""
        return self.current.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        """The current sampler's description."""
        return self.current.get_description()


class CurrentProcessor(SpanProcessor):
    """The shared provider's span processor: the current configuration's exporters, or none."""

    def __init__(self) -> None:
        self.current: SpanProcessor | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Pass the span on."""
        current = self.current
        if current is not None:
            current.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        """Pass the span on for export."""
        current = self.current
        if current is not None:
            current.on_end(span)

    def shutdown(self) -> None:
        """Nothing: each configuration's processor is shut down with its tracer."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what the current processor has queued."""
        current = self.current
        return True if current is None else current.force_flush(timeout_millis)


class SharedProvider(TracerProvider):
    """The tracer provider this package sets globally (at most one per process)."""

    def __init__(self, resource: Resource) -> None:
        self.current_sampler = CurrentSampler()
        self.current_processor = CurrentProcessor()
        super().__init__(
            sampler=self.current_sampler,
            resource=resource,
            id_generator=JoiningIdGenerator(),
            shutdown_on_exit=False,
        )
        self.add_span_processor(self.current_processor)


_shared: SharedProvider | None = None
_shared_lock = threading.Lock()


def application_provider() -> TracerProvider | None:
    """The SDK tracer provider the application set globally, if it set one (ours is not the application's)."""
    provider: Any = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider) and provider is not _shared:
        return provider
    return None


def shared_provider(settings: OtelSettings) -> SharedProvider | None:
    """The shared provider, set globally first if no provider is set yet; ``None`` when another one is."""
    global _shared
    with _shared_lock:
        if _shared is None and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            candidate = SharedProvider(build_resource(settings))
            trace.set_tracer_provider(candidate)
            if trace.get_tracer_provider() is candidate:
                _shared = candidate
        return _shared if _shared is not None and trace.get_tracer_provider() is _shared else None
