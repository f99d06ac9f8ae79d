"""The OpenTelemetry backend in process: spans exported over OTLP/HTTP to a real receiver that decodes them."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from django_prodkit.logging import ConsoleFormatter, JSONFormatter, RequestIDFilter
from django_prodkit.tracing.backend import get_tracer, reset_tracer
from tests.otlp_receiver import ReceivedSpan, Receiver

ROOT = Path(__file__).resolve().parent.parent
REQUEST_ID = "django_prodkit.middleware.RequestIDMiddleware"
TRACING = "django_prodkit.middleware.TracingMiddleware"
TRACE_ID = "5759e988bd862e3fe1be46a994272793"
PARENT = "53995c3f42cd8ad8"
XRAY_HEADER = f"Root=1-5759e988-bd862e3fe1be46a994272793;Parent={PARENT};Sampled=1"

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    for name in ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_PROPAGATORS", "OTEL_SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    server = Receiver()
    reset_tracer()
    yield server
    reset_tracer()
    server.close()


@pytest.fixture
def tracing(settings: Any, receiver: Receiver) -> Any:
    """Turn the OpenTelemetry backend on, sending to the receiver; TracingMiddleware after the id one."""

    def configure(**otel: Any) -> None:
        settings.PRODKIT = {"SERVICE_NAME": "blog-api", "OTEL": {"ENABLED": True, "ENDPOINT": receiver.url, **otel}}
        rest = [name for name in settings.MIDDLEWARE if name not in (REQUEST_ID, TRACING)]
        settings.MIDDLEWARE = [REQUEST_ID, TRACING, *rest]

    configure()
    return configure


def flushed(receiver: Receiver) -> list[ReceivedSpan]:
    """Every span exported so far: the batch processor is flushed first."""
    tracer: Any = get_tracer()
    assert tracer.provider.force_flush(10_000)
    return list(receiver.spans)


def test_a_sampled_request_is_one_server_span_with_the_http_conventions(tracing: Any, receiver: Receiver) -> None:
    traceparent = f"00-{TRACE_ID}-{PARENT}-01"
    response = Client().get(
        "/api/v1/items/first-post/?q=1",
        HTTP_TRACEPARENT=traceparent,
        HTTP_TRACESTATE="vendor=value",
        HTTP_USER_AGENT="pytest-agent",
    )
    assert response.status_code == 200
    [span] = flushed(receiver)
    assert (span.name, span.kind, span.status) == ("GET /api/v1/items/<slug:slug>/", "server", "unset")
    assert (span.trace_id, span.parent_span_id) == (TRACE_ID, PARENT)
    assert span.attributes == {
        "http.request.method": "GET",
        "http.route": "/api/v1/items/<slug:slug>/",
        "url.path": "/api/v1/items/first-post/",
        "url.scheme": "http",
        "server.address": "testserver",
        "client.address": "127.0.0.1",
        "user_agent.original": "pytest-agent",
        "http.response.status_code": 200,
        "request_id": response["X-Request-ID"],
        "db.query_count": 0,
        "db.duration_ms": 0.0,
    }
    assert span.resource["service.name"] == "blog-api"


def test_unsampled_context_gives_no_span_but_keeps_the_trace_id_in_logs(tracing: Any, receiver: Receiver) -> None:
    tracing(TRUST_INCOMING_SAMPLING=True)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(RequestIDFilter())
    view_logger = logging.getLogger("tests.views")
    view_logger.addHandler(handler)
    view_logger.setLevel(logging.INFO)
    try:
        Client().get("/api/v1/hello/", HTTP_TRACEPARENT=f"00-{TRACE_ID}-{PARENT}-00")
        Client().get("/api/v1/hello/")
    finally:
        view_logger.removeHandler(handler)
        view_logger.setLevel(logging.NOTSET)
    [span] = flushed(receiver)
    unsampled, sampled = (json.loads(line) for line in stream.getvalue().splitlines())
    assert unsampled["trace_id"] == TRACE_ID
    assert (sampled["trace_id"], sampled["span_id"]) == (span.trace_id, span.span_id)
    # A new trace id starts with the epoch seconds, as X-Ray (and the collector's awsxray exporter) require.
    assert abs(int(span.trace_id[:8], 16) - time.time()) < 3600


def test_console_lines_carry_the_trace_and_span_ids(tracing: Any, receiver: Receiver) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ConsoleFormatter())
    handler.addFilter(RequestIDFilter())
    view_logger = logging.getLogger("tests.views")
    view_logger.addHandler(handler)
    view_logger.setLevel(logging.INFO)
    try:
        Client().get("/api/v1/hello/")
    finally:
        view_logger.removeHandler(handler)
        view_logger.setLevel(logging.NOTSET)
    [span] = flushed(receiver)
    assert f"trace_id={span.trace_id} span_id={span.span_id}" in stream.getvalue()


def test_errors_faults_and_unmatched_routes(tracing: Any, receiver: Receiver) -> None:
    client = Client(raise_request_exception=False)
    assert client.get("/api/v1/boom/").status_code == 500
    assert client.get("/api/v1/bad-request/").status_code == 400
    assert client.get("/nowhere/").status_code == 404
    fault, bad, missing = flushed(receiver)
    assert (fault.name, fault.status) == ("GET /api/v1/boom/", "error")
    [(event, attributes)] = fault.events
    assert event == "exception"
    assert (attributes["exception.type"], attributes["exception.message"]) == ("RuntimeError", "boom")
    assert "boom" in attributes["exception.stacktrace"]
    assert (bad.status, bad.attributes["http.response.status_code"]) == ("unset", 400)
    assert (missing.name, missing.status) == ("GET", "unset")
    assert "http.route" not in missing.attributes


def test_the_xray_header_joins_and_malformed_headers_start_new_traces(tracing: Any, receiver: Receiver) -> None:
    client = Client()
    client.get(
        "/api/v1/hello/", HTTP_X_AMZN_TRACE_ID=f"Root=1-5759e988-bd862e3fe1be46a994272793;Parent={PARENT};Sampled=1"
    )
    client.get("/api/v1/hello/", HTTP_X_AMZN_TRACE_ID="Root=1-5759e988-bd862e3fe1be46a994272793;Self=1-abc")
    for header in (f"00-{TRACE_ID}-{PARENT}", f"ff-{TRACE_ID}-{PARENT}-01", f"00-{'0' * 32}-{PARENT}-01", "x" * 5000):
        assert client.get("/api/v1/hello/", HTTP_TRACEPARENT=header).status_code == 200
    continued, alb, *fresh = flushed(receiver)
    assert (continued.trace_id, continued.parent_span_id) == (TRACE_ID, PARENT)
    assert (alb.trace_id, alb.parent_span_id) == (TRACE_ID, "")
    assert len(fresh) == 4
    assert all(span.trace_id != TRACE_ID and span.parent_span_id == "" for span in fresh)


def test_propagators_follow_otel_propagators(tracing: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PROPAGATORS", "tracecontext")
    Client().get(
        "/api/v1/hello/", HTTP_X_AMZN_TRACE_ID=f"Root=1-5759e988-bd862e3fe1be46a994272793;Parent={PARENT};Sampled=1"
    )
    [span] = flushed(receiver)
    assert span.trace_id != TRACE_ID


def test_an_untrusted_sampled_flag_cannot_force_sampling(
    tracing: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    traceparent = f"00-{TRACE_ID}-{PARENT}-01"
    Client().get("/api/v1/hello/", HTTP_TRACEPARENT=traceparent)
    assert flushed(receiver) == []
    tracing(TRUST_INCOMING_SAMPLING=True)
    Client().get("/api/v1/hello/", HTTP_TRACEPARENT=traceparent)
    [span] = flushed(receiver)
    assert span.trace_id == TRACE_ID


def test_client_spans_tasks_and_request_attributes(tracing: Any, receiver: Receiver) -> None:
    body = Client().get("/api/v1/traced-work/").json()
    client_span, server = flushed(receiver)
    assert (client_span.kind, client_span.status) == ("client", "error")
    assert client_span.parent_span_id == server.span_id
    assert client_span.attributes["http.response.status_code"] == 503
    assert body["carrier"] == {
        "traceparent": f"00-{server.trace_id}-{client_span.span_id}-01",
        "X-Amzn-Trace-Id": f"Root=1-{server.trace_id[:8]}-{server.trace_id[8:]};Parent={client_span.span_id};Sampled=1",
    }
    assert body["inner_span_id"] == client_span.span_id
    # The view set db.query_count itself; the figures django_prodkit.db counted (no queries) replace it.
    assert server.attributes["db.query_count"] == 0
    tracer: Any = get_tracer()
    task = tracer.start_span("run send_mail", "consumer", carrier={"Traceparent": f"00-{TRACE_ID}-{PARENT}-01"})
    task.record_exception(ValueError("smtp down"))
    task.end()
    tracer.start_span("scheduled", "consumer").end()
    assert tracer.start_span("GET", "client").set_attribute("a", 1) is None
    carrier: dict[str, str] = {}
    tracer.inject(carrier)
    assert carrier == {}
    task_span, scheduled = flushed(receiver)[2:]
    assert (task_span.trace_id, task_span.parent_span_id, task_span.kind) == (TRACE_ID, PARENT, "consumer")
    assert task_span.status == "error"
    assert scheduled.parent_span_id == ""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_dead_collector_fails_nothing_and_warns_once(
    tracing: Any, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    tracing(ENDPOINT=f"http://127.0.0.1:{_closed_port()}/v1/traces")
    with caplog.at_level(logging.DEBUG):
        statuses = [Client().get("/api/v1/hello/").status_code for _ in range(20)]
        tracer: Any = get_tracer()
        for _ in range(3):
            Client().get("/api/v1/hello/")
            tracer.provider.force_flush(10_000)
    assert statuses == [200] * 20
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.name, r.exc_info) for r in warnings] == [("django_prodkit.tracing", None)]
    assert "Could not export spans" in warnings[0].getMessage()


def test_an_outage_warns_once_drops_between_probes_and_ends_with_one_info(caplog: pytest.LogCaptureFixture) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExportResult

    from django_prodkit.tracing.otel.export import QuietExporter, mute_exporter_logs

    mute_exporter_logs()
    port = _closed_port()
    inner = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=2)
    exporter = QuietExporter(inner, "the test collector", probe_interval=3600)
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.trace import SpanContext, TraceFlags

    context = SpanContext(1, 1, False, TraceFlags(TraceFlags.SAMPLED))
    batch = [ReadableSpan(name="a", context=context, resource=Resource.create({}), start_time=1, end_time=2)]
    with caplog.at_level(logging.INFO, logger="django_prodkit.tracing"):
        assert exporter.export(batch) == SpanExportResult.FAILURE
        back = Receiver(port=port)
        try:
            # Within the probe interval nothing is sent, even though the collector is back.
            assert exporter.export(batch) == SpanExportResult.FAILURE
            assert back.requests == 0
            exporter._next_probe = 0.0  # the probe interval has passed
            assert exporter.export(batch) == SpanExportResult.SUCCESS
            assert back.requests == 1
        finally:
            back.close()
        assert exporter.export(batch) == SpanExportResult.FAILURE  # a second outage
    exporter.shutdown()
    records = [r for r in caplog.records if r.name == "django_prodkit.tracing"]
    assert [(r.levelname, r.getMessage()[:20]) for r in records] == [
        ("WARNING", "Could not export spa"),
        ("INFO", "Spans reach the test"),
        ("WARNING", "Could not export spa"),
    ]
    assert "2 spans were dropped" in records[1].getMessage()  # the failed batch and the skipped one
    assert all(r.exc_info is None for r in records)


OFF_SCRIPT = """
import json, sys
import django
django.setup()
from django.test import Client
status = Client().get("/api/v1/hello/").status_code
print(json.dumps({"status": status, "otel": sorted(m for m in sys.modules if m.startswith("opentelemetry"))}))
"""

OFF_SETTINGS = """
from tests.settings import *
MIDDLEWARE = ["django_prodkit.middleware.RequestIDMiddleware", "django_prodkit.middleware.TracingMiddleware",
              *MIDDLEWARE[1:]]
PRODKIT = {"PROPAGATE_OUTBOUND": ["requests", "httpx", "urllib3"]}
"""


@pytest.mark.parametrize("enable", [None, "false", "true"])
def test_nothing_of_opentelemetry_is_imported_while_tracing_is_off(tmp_path: Path, enable: str | None) -> None:
    (tmp_path / "off_settings.py").write_text(OFF_SETTINGS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENABLE_", "OTEL_"))}
    env.update(DJANGO_SETTINGS_MODULE="off_settings", PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}")
    if enable is not None:
        env["ENABLE_OTEL"] = enable
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{_closed_port()}"
    done = subprocess.run(
        [sys.executable, "-c", OFF_SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == 200
    if enable == "true":
        assert "opentelemetry.sdk.trace" in result["otel"]
    else:
        assert result["otel"] == []


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    from botocore.credentials import Credentials

    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDPRODKITTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "right-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return Credentials("AKIDPRODKITTEST", "right-secret")


def test_sigv4_exports_are_signed_as_xray_checks_them(
    settings: Any, aws_credentials: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    checking = Receiver(credentials=aws_credentials, region="eu-west-1")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    settings.PRODKIT = {
        "OTEL": {"ENABLED": True, "ENDPOINT": checking.url, "AWS_SIGV4": True, "AWS_REGION": "eu-west-1"}
    }
    settings.MIDDLEWARE = [REQUEST_ID, TRACING, *settings.MIDDLEWARE[1:]]
    try:
        reset_tracer()
        assert Client().get("/api/v1/hello/").status_code == 200
        [span] = flushed(checking)
        assert (span.name, checking.refused) == ("GET /api/v1/hello/", 0)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
        reset_tracer()
        with caplog.at_level(logging.WARNING):
            assert Client().get("/api/v1/hello/").status_code == 200
            flushed(checking)
        assert (len(checking.spans), checking.refused) == (1, 1)
        warnings = [r.getMessage()[:27] for r in caplog.records if r.levelno >= logging.WARNING]
        assert warnings == ["Could not export spans to h"]
    finally:
        reset_tracer()
        checking.close()


def test_sigv4_defaults_to_xrays_otlp_endpoint_in_botocores_region(
    settings: Any, aws_credentials: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    settings.PRODKIT = {"OTEL": {"ENABLED": True, "AWS_SIGV4": True}}
    try:
        reset_tracer()
        tracer: Any = get_tracer()
        assert tracer.target == "https://xray.ap-southeast-2.amazonaws.com/v1/traces"
    finally:
        reset_tracer()
