"""The OpenTelemetry SDK objects of one configuration: resource, sampler, id generator and tracer provider.

The provider is this package's own, not the global one: turning django-prodkit's tracing on or off never
changes what other code sees through ``opentelemetry.trace.get_tracer_provider()``.
"""

from __future__ import annotations

import random
import time
from contextvars import ContextVar

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased

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

    A remote "not sampled" is always followed: a client can only lower what is traced of its own requests.
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
    """A tracer provider exporting through ``processor`` (not the global provider), its sampler and ids."""
    sampler = build_sampler(settings)
    ids = JoiningIdGenerator()
    provider = TracerProvider(
        sampler=sampler, resource=build_resource(settings), id_generator=ids, shutdown_on_exit=False
    )
    provider.add_span_processor(processor)
    return provider, sampler, ids
