"""Spans for the X-Ray backend: subsegments of the current segment, or segments of their own for tasks.

Loaded with :mod:`django_prodkit.tracing.xray` only when X-Ray tracing is on; aws-xray-sdk's objects are
made here and put into the same ``ContextVar`` the request's segment lives in, so patched libraries nest
under them too.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, MutableMapping
from contextvars import Token
from typing import TYPE_CHECKING, Any

from aws_xray_sdk.core.models.dummy_entities import DummySegment
from aws_xray_sdk.core.models.subsegment import Subsegment

from django_prodkit.context.trace import get_trace_id, reset_trace_id, set_trace_id
from django_prodkit.tracing.base import NOOP_SPAN, AttributeValue, Span, SpanKind
from django_prodkit.tracing.header import TRACE_HEADER, TraceHeader, new_trace_id, parse_trace_header
from django_prodkit.tracing.traces import SampledTrace, current_entities
from django_prodkit.tracing.w3c import TRACEPARENT, format_traceparent, parse_traceparent, w3c_to_xray, xray_to_w3c

if TYPE_CHECKING:
    from django_prodkit.tracing.xray import XRayTracer

#: Span attributes that X-Ray keeps in its ``http`` block (the service map reads them), by its key.
HTTP_ATTRIBUTES = {
    "http.request.method": "method",
    "url.full": "url",
    "http.response.status_code": "status",
}

#: aws-xray-sdk strips these from segment names (``Entity.__init__``, with a warning per segment).
INVALID_NAME_CHARACTERS = "?;*()!$~^<>"

#: Which X-Ray namespace a subsegment of each kind belongs to (``remote``: a call to another service).
NAMESPACES: dict[str, str] = {"client": "remote", "producer": "remote", "consumer": "local", "internal": "local"}


def inject(carrier: MutableMapping[str, str]) -> None:
    """Write ``X-Amzn-Trace-Id`` and ``traceparent`` for the current entity (``Sampled=0`` when unsampled)."""
    entities = current_entities.get()
    entity = entities[-1] if entities else None
    if isinstance(entity, SampledTrace):
        trace_id, parent, sampled = entity.trace_id, entity.segment_id, True
    elif entity is not None and not isinstance(entity, DummySegment):
        trace_id, parent, sampled = entity.trace_id, entity.id, True
    else:
        current = entity.trace_id if entity is not None else get_trace_id()
        if current is None or not current.startswith("1-"):
            return
        trace_id, parent, sampled = current, None, False
    if parent is None:
        carrier[TRACE_HEADER] = f"Root={trace_id};Sampled=0"
        return
    carrier[TRACE_HEADER] = f"Root={trace_id};Parent={parent};Sampled={1 if sampled else 0}"
    carrier[TRACEPARENT] = format_traceparent(xray_to_w3c(trace_id), parent, sampled)


def _carrier_header(carrier: Mapping[str, str], trust: bool) -> TraceHeader | None:
    lowered = {key.lower(): value for key, value in carrier.items()}
    header = parse_trace_header(lowered.get(TRACE_HEADER.lower()))
    if header is None:
        parent = parse_traceparent(lowered.get(TRACEPARENT))
        if parent is None:
            return None
        header = TraceHeader(w3c_to_xray(parent.trace_id), parent.span_id, "1" if parent.sampled else "0")
    if header.decision and not trust:
        return TraceHeader(header.root, header.parent, None, header.data)
    return header


class XRaySpan:
    """A subsegment or segment made by :func:`start_span`; current until :meth:`end`."""

    def __init__(self, tracer: XRayTracer, entity: Any, root: bool) -> None:
        self._tracer = tracer
        self._entity = entity
        self._root = root
        self._entities_token: Token[tuple[Any, ...]] = current_entities.set((*current_entities.get(), entity))
        self._trace_token = set_trace_id(entity.trace_id, entity.id)

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """X-Ray's ``http`` block for the HTTP semantic-convention keys, metadata for the rest."""
        try:
            if key in HTTP_ATTRIBUTES:
                self._entity.put_http_meta(HTTP_ATTRIBUTES[key], value)
            else:
                self._entity.put_metadata(key, value)
        except Exception:
            self._tracer.warn_once("could not set an attribute on an X-Ray subsegment")

    def record_exception(self, exception: BaseException) -> None:
        """Add the exception with its stack; marks the entity as a fault."""
        try:
            stack = traceback.extract_tb(exception.__traceback__, limit=self._tracer.max_trace_back)
            self._entity.add_exception(exception, stack, remote=getattr(self._entity, "namespace", None) == "remote")
        except Exception:
            self._tracer.warn_once("could not record an exception on an X-Ray subsegment")

    def end(self, *, error: bool = False) -> None:
        """Close the entity, restore the context, and send the segment once nothing in it is open."""
        try:
            current_entities.reset(self._entities_token)
            reset_trace_id(self._trace_token)
        except ValueError:
            # Ended in another context than it started in (a callback thread); nothing to restore there.
            pass
        try:
            if error:
                self._entity.add_fault_flag()
            self._entity.close()
            segment = self._entity if self._root else self._entity.parent_segment
            if segment.ready_to_send():
                self._tracer.emitter.send_entity(segment)
        except Exception:
            self._tracer.warn_once("could not end an X-Ray subsegment; it was dropped")


class UnsampledSpan:
    """Work in an unsampled trace: records nothing but keeps the trace id current (logs, ``Sampled=0`` out)."""

    def __init__(self, tracer: XRayTracer, trace_id: str) -> None:
        self._entities_token = current_entities.set((tracer.stand_in(trace_id),))
        self._trace_token = set_trace_id(trace_id)

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Nothing to record."""

    def record_exception(self, exception: BaseException) -> None:
        """Nothing to record."""

    def end(self, *, error: bool = False) -> None:
        """Restore the context."""
        try:
            current_entities.reset(self._entities_token)
            reset_trace_id(self._trace_token)
        except ValueError:
            pass


def start_span(
    tracer: XRayTracer,
    name: str,
    kind: SpanKind,
    carrier: Mapping[str, str] | None,
    attributes: Mapping[str, AttributeValue] | None,
) -> Span:
    """The :meth:`Tracer.start_span` of the X-Ray backend."""
    header = _carrier_header(carrier, tracer.trust_incoming) if carrier else None
    span: Span
    if header is not None or (kind == "consumer" and not current_entities.get()):
        span = _start_segment(tracer, name, header)
    else:
        span = _start_subsegment(tracer, name, kind)
    if attributes and isinstance(span, XRaySpan):
        for key, value in attributes.items():
            span.set_attribute(key, value)
    return span


def _start_subsegment(tracer: XRayTracer, name: str, kind: SpanKind) -> Span:
    entities = current_entities.get()
    if not entities or isinstance(entities[-1], DummySegment):
        return NOOP_SPAN
    parent = entities[-1]
    if isinstance(parent, SampledTrace):
        parent = parent.segment()
    # A subsegment knows its segment; a segment (a request's, a task's) is its own.
    segment = getattr(parent, "parent_segment", parent)
    if isinstance(segment, DummySegment) or not parent.in_progress:
        # The request is done (a call made after its response): its segment is already sent.
        return NOOP_SPAN
    subsegment = Subsegment(_clean(name), NAMESPACES[kind], segment)
    parent.add_subsegment(subsegment)
    return XRaySpan(tracer, subsegment, root=False)


def _start_segment(tracer: XRayTracer, name: str, header: TraceHeader | None) -> Span:
    decision: Any = header.decision if header is not None else None
    if decision is None:
        decision = tracer.sampler.should_trace({"service": tracer.name}) if tracer.sampling else True
    trace_id = header.root if header is not None and header.root else new_trace_id()
    if not decision:
        return UnsampledSpan(tracer, trace_id)
    segment = tracer.root_segment(trace_id, header, decision if isinstance(decision, str) else None)
    segment.put_annotation("operation", _clean(name))
    return XRaySpan(tracer, segment, root=True)


def _clean(name: str) -> str:
    return "".join(c for c in name if c not in INVALID_NAME_CHARACTERS)[:200] or "span"
