"""Trace context in and out for the OpenTelemetry backend: W3C ``traceparent``/``tracestate`` and X-Ray's header.

Headers are parsed by the strict parsers in :mod:`django_prodkit.tracing.w3c` and
:mod:`django_prodkit.tracing.header`; anything malformed starts a new trace. The formats are tried in the
order ``OTEL_PROPAGATORS`` lists them; the first valid one wins.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState, set_span_in_context

from django_prodkit.tracing.header import TRACE_HEADER, TRACE_HEADER_META, parse_trace_header
from django_prodkit.tracing.w3c import (
    MAX_TRACESTATE_LENGTH,
    TRACEPARENT,
    TRACEPARENT_META,
    TRACESTATE,
    TRACESTATE_META,
    format_traceparent,
    parse_traceparent,
    xray_to_w3c,
)

#: Where each propagator finds its headers in ``request.META`` and in a plain carrier (lower-cased keys).
META_KEYS = {"tracecontext": (TRACEPARENT_META, TRACESTATE_META), "xray": (TRACE_HEADER_META, "")}
CARRIER_KEYS = {"tracecontext": (TRACEPARENT, TRACESTATE), "xray": (TRACE_HEADER.lower(), "")}

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_EMPTY_STATE = TraceState()

#: What extraction found: a context with the remote parent, or a bare trace id to join (X-Ray ``Root`` only).
Extracted = tuple[Context | None, int | None]
NOTHING: Extracted = (None, None)


def _trace_state(value: str | None) -> TraceState:
    if not value or len(value) > MAX_TRACESTATE_LENGTH:
        return _EMPTY_STATE
    try:
        return TraceState.from_header([value])
    except Exception:
        return _EMPTY_STATE


def _remote(trace_id: str, span_id: str, sampled: bool, state: TraceState) -> Context:
    span_context = SpanContext(int(trace_id, 16), int(span_id, 16), True, _SAMPLED if sampled else _NOT_SAMPLED, state)
    return set_span_in_context(NonRecordingSpan(span_context))


def _extract_one(name: str, value: Any, state: Any) -> Extracted | None:
    if name == "tracecontext":
        parent = parse_traceparent(value)
        if parent is None:
            return None
        return _remote(parent.trace_id, parent.span_id, parent.sampled, _trace_state(state)), None
    header = parse_trace_header(value)
    if header is None or header.root is None:
        return None
    trace_id = xray_to_w3c(header.root)
    if header.parent is None or header.decision is None:
        # An ALB's or CloudFront's header names the trace only; the sampler decides.
        return None, int(trace_id, 16)
    return _remote(trace_id, header.parent, header.decision, _EMPTY_STATE), None


def extract_meta(meta: Mapping[str, Any], propagators: tuple[str, ...]) -> Extracted:
    """The incoming context of a request from its ``META``."""
    for name in propagators:
        value_key, state_key = META_KEYS[name]
        value = meta.get(value_key)
        if value:
            found = _extract_one(name, value, meta.get(state_key) if state_key else None)
            if found is not None:
                return found
    return NOTHING


def extract_carrier(carrier: Mapping[str, str], propagators: tuple[str, ...]) -> Extracted:
    """The context in a carrier of headers (a task's, a message's); header names in any case."""
    lowered = {key.lower(): value for key, value in carrier.items()}
    for name in propagators:
        value_key, state_key = CARRIER_KEYS[name]
        value = lowered.get(value_key)
        if value:
            found = _extract_one(name, value, lowered.get(state_key) if state_key else None)
            if found is not None:
                return found
    return NOTHING


def inject(span_context: SpanContext, carrier: MutableMapping[str, str], propagators: tuple[str, ...]) -> None:
    """Write ``span_context`` into ``carrier`` in every configured format."""
    if not span_context.is_valid:
        return
    trace_id = format(span_context.trace_id, "032x")
    span_id = format(span_context.span_id, "016x")
    sampled = span_context.trace_flags.sampled
    for name in propagators:
        if name == "tracecontext":
            carrier[TRACEPARENT] = format_traceparent(trace_id, span_id, sampled)
            if span_context.trace_state:
                carrier[TRACESTATE] = span_context.trace_state.to_header()
        else:
            carrier[TRACE_HEADER] = f"Root=1-{trace_id[:8]}-{trace_id[8:]};Parent={span_id};Sampled={int(sampled)}"
