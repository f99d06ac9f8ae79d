"""The AWS X-Ray backend: the only module that imports aws-xray-sdk, loaded only when tracing is on.

aws-xray-sdk's recorder is process-wide and its patched libraries (botocore, requests, httpx, the
database cursor) look segments up through it, so it is configured once per configuration and given a
context stored in a ``ContextVar``: each request (thread or asyncio task) sees only its own segment,
which the SDK's thread-local default cannot guarantee for concurrent async requests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from aws_xray_sdk import global_sdk_config
from aws_xray_sdk.core import patch, xray_recorder
from aws_xray_sdk.core.context import Context
from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
from aws_xray_sdk.core.models.dummy_entities import DummySegment
from aws_xray_sdk.core.models.segment import Segment
from aws_xray_sdk.core.models.trace_header import TraceHeader as SDKTraceHeader
from aws_xray_sdk.core.recorder import SERVICE_INFO
from aws_xray_sdk.core.sampling.local.sampler import LocalSampler
from aws_xray_sdk.core.sampling.sampler import DefaultSampler
from django.http import HttpRequest

from django_prodkit.context.trace import set_trace_id
from django_prodkit.tracing.base import NOOP_SPAN, NOOP_TRACE, AttributeValue, RequestTrace, Span, SpanKind
from django_prodkit.tracing.document import MAX_HOST_LENGTH
from django_prodkit.tracing.emitter import UDPDaemonEmitter, daemon_address_from_env, logger
from django_prodkit.tracing.header import TRACE_HEADER_META, TraceHeader, new_trace_id, parse_trace_header
from django_prodkit.tracing.traces import SampledTrace, UnsampledTrace, current_entities
from django_prodkit.tracing.xray_spans import INVALID_NAME_CHARACTERS, inject, start_span

#: The context-missing strategy that says nothing outside a request (django-prodkit's default).
SILENT = "IGNORE_ERROR"

#: At most this many sampling-rule names get their own precomputed document tail.
MAX_CACHED_RULES = 64

_compact = json.JSONEncoder(separators=(",", ":")).encode


def _sdk_entity(entity: Any) -> Any:
    # A request's segment exists as an SDK object only once something asks the recorder for it.
    return entity.segment() if isinstance(entity, SampledTrace) else entity


class ContextVarContext(Context):  # type: ignore[misc]
    """aws-xray-sdk's ``Context`` with its storage in a ``ContextVar`` (per request, thread and task).

    With the silent strategy, code that asks for a segment outside a request (a management command, a
    thread the app started) gets an unsampled stand-in, so patched libraries record nothing and log nothing.
    """

    def put_segment(self, segment: Any) -> None:
        current_entities.set((segment,))

    def put_subsegment(self, subsegment: Any) -> None:
        entities = current_entities.get()
        if not entities:
            return
        _sdk_entity(entities[-1]).add_subsegment(subsegment)
        current_entities.set((*entities, subsegment))

    def end_subsegment(self, end_time: float | None = None) -> bool:
        entities = current_entities.get()
        if not entities or not self._is_subsegment(entities[-1]):
            return False
        entities[-1].close(end_time)
        current_entities.set(entities[:-1])
        return True

    def get_trace_entity(self) -> Any:
        entities = current_entities.get()
        if entities:
            return _sdk_entity(entities[-1])
        if not global_sdk_config.sdk_enabled():
            return DummySegment()
        return self.handle_context_missing()

    def set_trace_entity(self, trace_entity: Any) -> None:
        current_entities.set((trace_entity,))

    def clear_trace_entities(self) -> None:
        current_entities.set(())

    def handle_context_missing(self) -> Any:
        if self.context_missing == SILENT:
            return DummySegment()
        return super().handle_context_missing()


def load_sampling_rules(rules: str | Mapping[str, Any]) -> dict[str, Any]:
    """Local sampling rules from a dict or a JSON file path, checked by the SDK's ``LocalSampler``."""
    # The configuration is read-only; the SDK gets a plain, deep copy it may keep.
    loaded: Any = (
        json.loads(json.dumps(rules, default=dict))
        if isinstance(rules, Mapping)
        else json.loads(Path(rules).read_text(encoding="utf-8"))
    )
    if not isinstance(loaded, dict):
        raise ValueError("sampling rules must be a JSON object")
    LocalSampler(loaded)
    return loaded


def _replace_emitter(emitter: UDPDaemonEmitter) -> None:
    old = xray_recorder.emitter
    xray_recorder.emitter = emitter
    if isinstance(old, UDPDaemonEmitter):
        old.close()
    elif isinstance(old, UDPEmitter):
        # The SDK opens this socket at import; nobody else holds it once replaced.
        old._socket.close()


class XRayTracer:
    """Traces requests into aws-xray-sdk's global recorder (configured by the constructor)."""

    def __init__(self, xray: dict[str, Any], default_service_name: str) -> None:
        address = daemon_address_from_env()
        self.emitter = UDPDaemonEmitter(address.udp)
        sampler: Any = DefaultSampler() if xray["CENTRALIZED_SAMPLING"] else LocalSampler()
        rules = xray["SAMPLING_RULES"]
        _replace_emitter(self.emitter)
        xray_recorder.configure(
            sampling=xray["SAMPLING"],
            sampler=sampler,
            sampling_rules=load_sampling_rules(rules) if rules else None,
            context=ContextVarContext(),
            context_missing=xray["CONTEXT_MISSING"],
            service=xray["SERVICE_NAME"] or default_service_name,
            plugins=tuple(xray["PLUGINS"]),
        )
        modules = list(xray["PATCH_MODULES"])
        if modules:
            patch(modules, raise_errors=False)
        if xray["RECORD_DB_QUERIES"]:
            from aws_xray_sdk.ext.django.db import patch_db

            patch_db()
        self.recorder = xray_recorder
        self.name: str = "".join(c for c in xray_recorder.service if c not in INVALID_NAME_CHARACTERS)
        Segment(self.name)  # a name the SDK refuses fails here, at startup, not in a request
        self.sampling: bool = xray_recorder.sampling
        self.sampler = xray_recorder.sampler
        # Unsampled requests get a stand-in segment only when patched libraries may look for one (to pass
        # "Sampled=0" downstream); otherwise they cost no SDK object at all.
        self.patching = bool(modules) or xray["RECORD_DB_QUERIES"]
        self.max_trace_back: int = xray_recorder.max_trace_back
        self._aws: dict[str, Any] = json.loads(json.dumps(xray_recorder._aws_metadata))
        self._origin: str | None = xray_recorder._origin
        self._tails: dict[str | None, str] = {}
        self.trust_incoming: bool = xray["TRUST_INCOMING_SAMPLING"]
        self._warned = False

    def begin(self, request: HttpRequest) -> RequestTrace:
        """Start the request's segment (or decide not to sample it); never raises."""
        try:
            return self._begin(request)
        except Exception:
            self.warn_once("could not start an X-Ray segment; the request is not traced")
            return NOOP_TRACE

    def _begin(self, request: HttpRequest) -> RequestTrace:
        meta = request.META
        header = parse_trace_header(meta.get(TRACE_HEADER_META))
        decision: Any = header.decision if header is not None else None
        if decision and not self.trust_incoming:
            decision = None
        if decision is None:
            if self.sampling:
                decision = self.sampler.should_trace(
                    {
                        "host": str(meta.get("HTTP_HOST", ""))[:MAX_HOST_LENGTH],
                        "method": request.method,
                        "path": request.path,
                        "service": self.name,
                    }
                )
            else:
                decision = True
        root = header.root if header is not None and header.root else new_trace_id()
        requested = header is not None and header.sampled == "?"
        if not decision:
            entities_token = None
            if self.patching:
                entities_token = current_entities.set((self.stand_in(root),))
            return UnsampledTrace(root, requested, set_trace_id(root), entities_token)
        rule_name = decision if isinstance(decision, str) else None
        return SampledTrace(self, root, header, rule_name, requested)

    def inject(self, carrier: MutableMapping[str, str]) -> None:
        """Write ``X-Amzn-Trace-Id`` and ``traceparent`` for the current segment or subsegment; never raises."""
        try:
            inject(carrier)
        except Exception:
            self.warn_once("could not write the X-Ray trace header")

    def start_span(
        self,
        name: str,
        kind: SpanKind,
        *,
        carrier: Mapping[str, str] | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> Span:
        """A subsegment of the current segment, or a segment of its own (a task); never raises."""
        try:
            return start_span(self, name, kind, carrier, attributes)
        except Exception:
            self.warn_once("could not start an X-Ray subsegment; the work is not traced")
            return NOOP_SPAN

    def stand_in(self, trace_id: str) -> Any:
        """An unsampled SDK segment: patched libraries record nothing into it and pass ``Sampled=0`` on."""
        stand_in = DummySegment(self.name)
        stand_in.trace_id = trace_id
        return stand_in

    def new_segment(self, trace: SampledTrace) -> Any:
        """aws-xray-sdk's segment for a sampled request, as the SDK's recorder would begin it."""
        segment = self.root_segment(trace.trace_id, trace.header, trace.rule_name, trace.segment_id)
        segment.start_time = trace.start_time
        return segment

    def root_segment(
        self, trace_id: str, header: TraceHeader | None, rule_name: str | None, segment_id: str | None = None
    ) -> Any:
        """A new sampled SDK segment (a request's, or a task's that continues ``header``)."""
        parent_id = header.parent if header is not None else None
        segment = Segment(self.name, entityid=segment_id, traceid=trace_id, parent_id=parent_id)
        segment.set_aws(self._aws_of(rule_name))
        segment.set_service(SERVICE_INFO)
        if self._origin:
            segment.origin = self._origin
        if header is not None and header.data:
            segment.save_origin_trace_header(_sdk_header(header))
        return segment

    def document_tail(self, rule_name: str | None) -> str:
        """The members every segment document shares (name, aws, service, origin) and its closing brace."""
        tail = self._tails.get(rule_name)
        if tail is None:
            tail = (
                f',"name":{encode_basestring_ascii(self.name)},"aws":{_compact(self._aws_of(rule_name))}'
                f',"service":{_compact(SERVICE_INFO)}'
            )
            if self._origin:
                tail += f',"origin":{encode_basestring_ascii(self._origin)}'
            tail += "}"
            if len(self._tails) < MAX_CACHED_RULES:
                self._tails[rule_name] = tail
        return tail

    def _aws_of(self, rule_name: str | None) -> dict[str, Any]:
        aws: dict[str, Any] = json.loads(json.dumps(self._aws))
        if rule_name:
            aws["xray"] = {**aws.get("xray", {}), "sampling_rule_name": rule_name}
        return aws

    def shutdown(self) -> None:
        """Close the emitter's socket."""
        self.emitter.close()

    def warn_once(self, message: str) -> None:
        """Log ``message`` with the current exception the first time only (tracing never fails a request)."""
        if not self._warned:
            self._warned = True
            logger.warning(message, exc_info=True)


def _sdk_header(header: TraceHeader) -> Any:
    return SDKTraceHeader(root=header.root, parent=header.parent, sampled=header.sampled, data=dict(header.data))
