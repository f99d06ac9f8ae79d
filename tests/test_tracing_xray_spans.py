"""The tracer interface on the X-Ray backend: subsegments, header injection, task segments, attributes."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

from django.test import Client

from django_prodkit.context.trace import get_span_id, get_trace_id
from django_prodkit.logging import JSONFormatter, RequestIDFilter
from django_prodkit.tracing.backend import get_tracer
from django_prodkit.tracing.base import NOOP_SPAN
from tests.test_tracing_xray import NOTHING_SAMPLED, PARENT, TRACE_ROOT, Daemon, daemon, tracing

__all__ = ["daemon", "tracing"]  # fixtures used by name below


def test_a_client_span_is_a_remote_subsegment_and_its_headers_name_it(tracing: Any, daemon: Daemon) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(RequestIDFilter())
    view_logger = logging.getLogger("tests.views")
    view_logger.addHandler(handler)
    view_logger.setLevel(logging.INFO)
    try:
        body = Client().get("/api/v1/traced-work/").json()
    finally:
        view_logger.removeHandler(handler)
        view_logger.setLevel(logging.NOTSET)
    [segment] = daemon.segments()
    [subsegment] = segment["subsegments"]
    assert subsegment["namespace"] == "remote"
    assert subsegment["name"] == "GET"
    assert subsegment["http"] == {
        "request": {"method": "GET", "url": "http://downstream.invalid/x"},
        "response": {"status": 503},
    }
    assert subsegment["fault"] is True
    assert subsegment["metadata"] == {"default": {"peer.note": "slow"}}
    # The view set db.query_count itself; the figures django_prodkit.db counted (no queries) replace it.
    assert segment["metadata"] == {"default": {"db.query_count": 0, "db.duration_ms": 0.0}}
    trace_id = segment["trace_id"]
    assert body["carrier"]["X-Amzn-Trace-Id"] == f"Root={trace_id};Parent={subsegment['id']};Sampled=1"
    assert body["carrier"]["traceparent"] == f"00-{trace_id[2:10]}{trace_id[11:]}-{subsegment['id']}-01"
    assert body["inner_span_id"] == subsegment["id"]
    assert body["span_id"] == segment["id"]
    [line] = (json.loads(text) for text in stream.getvalue().splitlines())
    assert (line["trace_id"], line["span_id"]) == (trace_id, segment["id"])


def test_an_unsampled_request_passes_its_decision_on_and_records_nothing(tracing: Any, daemon: Daemon) -> None:
    body = Client().get("/api/v1/traced-work/", HTTP_X_AMZN_TRACE_ID=f"Root={TRACE_ROOT};Sampled=0").json()
    assert daemon.segments() == []
    assert body["carrier"] == {"X-Amzn-Trace-Id": f"Root={TRACE_ROOT};Sampled=0"}


def test_an_untrusted_sampled_flag_does_not_force_sampling(tracing: Any, daemon: Daemon) -> None:
    tracing(SAMPLING=True, SAMPLING_RULES=NOTHING_SAMPLED, TRUST_INCOMING_SAMPLING=False)
    header = f"Root={TRACE_ROOT};Parent={PARENT};Sampled=1"
    response = Client().get("/api/v1/hello/", HTTP_X_AMZN_TRACE_ID=header)
    assert daemon.segments() == []
    assert response["X-Amzn-Trace-Id"] == f"Root={TRACE_ROOT}"
    tracing(SAMPLING=True, SAMPLING_RULES=NOTHING_SAMPLED, TRUST_INCOMING_SAMPLING=False)
    Client().get("/api/v1/hello/", HTTP_X_AMZN_TRACE_ID=f"Root={TRACE_ROOT};Sampled=0")
    assert daemon.segments() == []


def test_a_task_continues_the_trace_its_headers_carry(tracing: Any, daemon: Daemon) -> None:
    tracer = get_tracer()
    assert tracer is not None
    carrier = {"X-Amzn-Trace-Id": f"Root={TRACE_ROOT};Parent={PARENT};Sampled=1"}
    span = tracer.start_span("run send_mail", "consumer", carrier=carrier, attributes={"task.name": "send_mail"})
    assert (get_trace_id(), get_span_id()) != (None, None)
    inner = tracer.start_span("render", "internal")
    inner.end()
    try:
        raise ValueError("smtp down")
    except ValueError as exc:
        span.record_exception(exc)
    span.end(error=True)
    assert (get_trace_id(), get_span_id()) == (None, None)
    [segment] = daemon.segments()
    assert (segment["trace_id"], segment["parent_id"]) == (TRACE_ROOT, PARENT)
    assert segment["annotations"] == {"operation": "run send_mail"}
    assert segment["metadata"] == {"default": {"task.name": "send_mail"}}
    assert segment["fault"] is True
    assert segment["cause"]["exceptions"][0]["message"] == "smtp down"
    [sub] = segment["subsegments"]
    assert (sub["name"], sub["namespace"]) == ("render", "local")


def test_a_w3c_carrier_and_a_root_task_and_unsampled_tasks(tracing: Any, daemon: Daemon) -> None:
    tracer = get_tracer()
    assert tracer is not None
    w3c = {"traceparent": f"00-5759e988bd862e3fe1be46a994272793-{PARENT}-01"}
    tracer.start_span("task", "consumer", carrier=w3c).end()
    tracer.start_span("task", "consumer").end()
    unsampled = tracer.start_span("task", "consumer", carrier={"traceparent": f"00-{'a' * 32}-{PARENT}-00"})
    assert get_trace_id() == f"1-aaaaaaaa-{'a' * 24}"
    carrier: dict[str, str] = {}
    tracer.inject(carrier)
    assert carrier == {"X-Amzn-Trace-Id": f"Root=1-aaaaaaaa-{'a' * 24};Sampled=0"}
    unsampled.end()
    continued, root = daemon.segments()
    assert (continued["trace_id"], continued["parent_id"]) == (TRACE_ROOT, PARENT)
    assert "parent_id" not in root
    assert root["trace_id"] != TRACE_ROOT


def test_outside_any_trace_spans_record_nothing_and_inject_writes_nothing(tracing: Any, daemon: Daemon) -> None:
    tracer = get_tracer()
    assert tracer is not None
    assert tracer.start_span("GET", "client") is NOOP_SPAN
    assert tracer.start_span("GET", "client", carrier={"traceparent": "garbage"}) is NOOP_SPAN
    carrier: dict[str, str] = {}
    tracer.inject(carrier)
    assert carrier == {}
    assert daemon.segments() == []
