"""One request's trace for the X-Ray backend, sampled or not (the SDK objects are made by ``xray.py``)."""

from __future__ import annotations

import json
import os
import time
import traceback
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponseBase

from django_prodkit.context.trace import reset_trace_id, set_trace_id
from django_prodkit.tracing.base import AttributeValue
from django_prodkit.tracing.document import render_segment
from django_prodkit.tracing.header import TRACE_HEADER, TraceHeader, response_header

if TYPE_CHECKING:
    from django_prodkit.tracing.xray import XRayTracer

#: The trace entities of the current request (thread or asyncio task): its segment, then open subsegments.
#: Until something asks aws-xray-sdk for it, the segment is the request's :class:`SampledTrace` itself.
current_entities: ContextVar[tuple[Any, ...]] = ContextVar("prodkit_xray_entities", default=())


class UnsampledTrace:
    """A request that is not sampled: it keeps its trace id (logs, response header) and records nothing."""

    def __init__(
        self,
        trace_id: str,
        requested: bool,
        trace_token: Token[tuple[str, str | None] | None],
        entities_token: Token[Any] | None,
    ) -> None:
        self.trace_id = trace_id
        self._requested = requested
        self._trace_token = trace_token
        self._entities_token = entities_token

    def record_exception(self, exception: BaseException) -> None:
        """Nothing to record."""

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Nothing to record."""

    def finish(self, request: HttpRequest, response: HttpResponseBase) -> None:
        """Add the trace header to the response."""
        response[TRACE_HEADER] = response_header(self.trace_id, False, self._requested)

    def close(self) -> None:
        """Restore the context."""
        if self._entities_token is not None:
            current_entities.reset(self._entities_token)
        reset_trace_id(self._trace_token)


class SampledTrace:
    """A sampled request: one segment, completed from the response and sent to the daemon.

    aws-xray-sdk's ``Segment`` is made only when something asks the recorder for the current segment
    (a patched library, the view, an exception to record); a request nothing touched is written straight
    to its document, which is most of the cost saved over the SDK's own middleware.
    """

    __slots__ = (
        "_attributes",
        "_entities_token",
        "_finished",
        "_requested",
        "_segment",
        "_trace_token",
        "_tracer",
        "header",
        "rule_name",
        "segment_id",
        "start_time",
        "trace_id",
    )

    def __init__(
        self,
        tracer: XRayTracer,
        trace_id: str,
        header: TraceHeader | None,
        rule_name: str | None,
        requested: bool,
    ) -> None:
        self.trace_id = trace_id
        self.segment_id = os.urandom(8).hex()
        self.start_time = time.time()
        self.header = header
        self.rule_name = rule_name
        self._tracer = tracer
        self._requested = requested
        self._segment: Any = None
        self._finished = False
        self._attributes: dict[str, AttributeValue] | None = None
        self._trace_token = set_trace_id(trace_id, self.segment_id)
        self._entities_token = current_entities.set((self,))

    @property
    def parent_id(self) -> str | None:
        """The upstream segment's id from the incoming trace header, if any."""
        return self.header.parent if self.header is not None else None

    def segment(self) -> Any:
        """aws-xray-sdk's segment for this request, made on first use (a stand-in once the request is done)."""
        if self._segment is None:
            if self._finished:
                # Work the request left behind without a subsegment open: its document is already sent.
                return self._tracer.stand_in(self.trace_id)
            try:
                self._segment = self._tracer.new_segment(self)
            except Exception:
                # Asked for by a patched library or the view: tracing must not fail their call.
                self._tracer.warn_once("could not make an X-Ray segment; this request records no subsegments")
                return self._tracer.stand_in(self.trace_id)
        return self._segment

    def record_exception(self, exception: BaseException) -> None:
        """Record the exception (type, message, stack) on the segment; marks it as a fault."""
        try:
            stack = traceback.extract_tb(exception.__traceback__, limit=self._tracer.max_trace_back)
            self.segment().add_exception(exception, stack)
        except Exception:
            self._tracer.warn_once("could not record an exception on an X-Ray segment")

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        """Keep an attribute for the segment's metadata (X-Ray annotations cannot have dotted keys)."""
        if self._attributes is None:
            self._attributes = {}
        self._attributes[key] = value

    def finish(self, request: HttpRequest, response: HttpResponseBase) -> None:
        """Complete the segment from the request and response and send it."""
        try:
            response[TRACE_HEADER] = response_header(self.trace_id, True, self._requested)
            self._complete(request, response)
        except Exception:
            self._tracer.warn_once("could not complete an X-Ray segment; it was dropped")
        finally:
            self._finished = True

    def _complete(self, request: HttpRequest, response: HttpResponseBase) -> None:
        tracer = self._tracer
        segment = self._segment
        document = render_segment(
            request,
            response,
            (self.segment_id, self.trace_id, self.parent_id),
            self.start_time,
            time.time(),
            tracer.document_tail(self.rule_name),
            self._attributes,
        )
        if segment is None:
            tracer.emitter.send_document(document)
            return
        # The SDK's segment gets the same request fields, so both ways write the same document.
        fields = json.loads(document)
        segment.http = fields["http"]
        segment.apply_status_code(fields["http"]["response"]["status"])
        segment.annotations.update(fields["annotations"])
        for key, value in (self._attributes or {}).items():
            segment.put_metadata(key, value)
        if "user" in fields and segment.user is None:
            segment.user = fields["user"]
        segment.close(fields["end_time"])
        if segment.ready_to_send():
            tracer.emitter.send_entity(segment)
        # Otherwise a subsegment is still open (work the view left running); the SDK sends the segment
        # when that subsegment ends.

    def close(self) -> None:
        """Restore the context."""
        current_entities.reset(self._entities_token)
        reset_trace_id(self._trace_token)
