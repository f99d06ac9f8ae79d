"""OpenTelemetry end to end: gunicorn with 2 workers sends spans over OTLP/HTTP to a receiver in the test.

Spans are exported by each worker's batch processor, started after the fork (the master imports the
application: ``--preload``), and flushed by django-prodkit's ``worker_exit`` hook: the schedule delay is
longer than the test, so every span counted here was sent when the workers exited.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.otlp_receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SETTINGS = """
import os
from tests.settings import *
from django_prodkit.logging import configure_logging
MIDDLEWARE = ["django_prodkit.middleware.RequestIDMiddleware", "django_prodkit.middleware.TracingMiddleware",
              *MIDDLEWARE[1:]]
ROOT_URLCONF = "tests.urls_otel"
PRODKIT = {"SERVICE_NAME": os.environ["E2E_SERVICE"],
           "OTEL": {"ENABLED": True, "TRUST_INCOMING_SAMPLING": os.environ.get("E2E_TRUST") == "1"},
           "PROPAGATE_OUTBOUND": ["requests", "httpx"]}
if os.environ.get("E2E_INSTRUMENT"):
    # What a project does in its settings or wsgi.py: a real instrumentation, and maybe its own provider.
    if os.environ["E2E_INSTRUMENT"] == "own-provider":
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": "app-provider"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

    SQLite3Instrumentor().instrument()
LOGGING = configure_logging(fmt="json", level="INFO", loggers={"django_prodkit.tracing": {"level": "WARNING"}})
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@contextmanager
def gunicorn(tmp_path: Path, service: str, endpoint: str, workers: int = 2, **env: str) -> Iterator[tuple[int, Path]]:
    """A gunicorn server of the test site tracing to ``endpoint``; yields its port and its log file."""
    (tmp_path / "otel_e2e_settings.py").write_text(SETTINGS)
    port = free_port()
    log = tmp_path / f"{service}.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "ENABLE_"))}
    environment.update(
        DJANGO_SETTINGS_MODULE="otel_e2e_settings",
        PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}",
        E2E_SERVICE=service,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=endpoint,
        OTEL_BSP_SCHEDULE_DELAY="600000",
    )
    environment.update(env)
    command = [sys.executable, "-m", "gunicorn", "-c", "python:django_prodkit.gunicorn", "tests.wsgi:application"]
    command += ["--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--preload", "--graceful-timeout", "10"]
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
            try:
                # A connection only: a probe request would be traced too.
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not serve within 30 s:\n{log.read_text()}")
                time.sleep(0.1)
        yield port, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def json_lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def test_spans_over_otlp_from_two_workers_and_a_second_service(tmp_path: Path) -> None:
    receiver = Receiver()
    count = 12
    parents = {f"{n:032x}": f"{n + 1:016x}" for n in range(1, count + 1)}
    try:
        with (
            gunicorn(tmp_path, "backend", receiver.url, workers=1) as (backend, backend_log),
            gunicorn(tmp_path, "frontend", receiver.url, E2E_TRUST="1") as (frontend, frontend_log),
        ):

            def sampled(trace_id: str) -> tuple[int, dict[str, str], bytes]:
                traceparent = f"00-{trace_id}-{parents[trace_id]}-01"
                return get(frontend, f"/api/v1/items/post-{trace_id[-4:]}/", {"traceparent": traceparent})

            with ThreadPoolExecutor(max_workers=4) as pool:
                answers = dict(zip(parents, pool.map(sampled, parents), strict=True))
            unsampled = [get(frontend, "/api/v1/hello/", {"traceparent": f"00-{'e' * 32}-{'f' * 16}-00"})]
            unsampled += [get(frontend, "/api/v1/hello/", {"traceparent": f"00-{'d' * 32}-{'f' * 16}-00"})]
            boom = get(frontend, "/api/v1/boom/", {"traceparent": f"00-{'b' * 32}-{'c' * 16}-01"})
            target = f"http://127.0.0.1:{backend}/api/v1/hello/"
            calls = {
                client: get(frontend, f"/api/v1/call-out/{client}/?url={target}") for client in ("requests", "httpx")
            }
        spans = receiver.wait_for(count + 1 + 2 * 3, timeout=20)
    finally:
        receiver.close()
    assert all(status == 200 for status, _, _ in answers.values())
    assert [status for status, _, _ in unsampled] == [200, 200]
    assert boom[0] == 500
    servers = {
        span.trace_id: span for span in spans if span.kind == "server" and span.resource["service.name"] == "frontend"
    }
    # Exactly one server span per sampled request, each continuing its incoming traceparent.
    for trace_id, (_, headers, _) in answers.items():
        span = servers.pop(trace_id)
        assert span.parent_span_id == parents[trace_id]
        assert span.name == "GET /api/v1/items/<slug:slug>/"
        assert span.attributes["http.route"] == "/api/v1/items/<slug:slug>/"
        assert span.attributes["http.response.status_code"] == 200
        assert span.attributes["request_id"] == headers["X-Request-ID"]
    failed = servers.pop("b" * 32)
    assert (failed.status, failed.attributes["http.response.status_code"]) == ("error", 500)
    assert [name for name, _ in failed.events] == ["exception"]
    assert failed.events[0][1]["exception.type"] == "RuntimeError"
    assert not {"e" * 32, "d" * 32} & set(servers)
    # What is left: the two requests that called the second service, each with a CLIENT span whose child is
    # the second service's SERVER span, which saw the same X-Request-ID.
    assert len(servers) == 2
    backend_lines = json_lines(backend_log)
    for client, (status, headers, body) in calls.items():
        assert status == 200, body
        outer = next(span for span in servers.values() if span.attributes["request_id"] == headers["X-Request-ID"])
        [call] = [s for s in spans if s.kind == "client" and s.parent_span_id == outer.span_id]
        [inner] = [s for s in spans if s.resource["service.name"] == "backend" and s.parent_span_id == call.span_id]
        assert (inner.kind, inner.trace_id, inner.name) == ("server", outer.trace_id, "GET /api/v1/hello/")
        assert json.loads(body)["seen"]["request_id"] == headers["X-Request-ID"] == inner.attributes["request_id"]
        # The second service's log line of that request carries the trace and its own span.
        [line] = [
            entry
            for entry in backend_lines
            if entry.get("request_id") == headers["X-Request-ID"] and entry["event"] == "hello from a view"
        ]
        assert (line["trace_id"], line["span_id"]) == (outer.trace_id, inner.span_id), client
    assert len(spans) == count + 1 + 2 * 3
    frontend_lines = json_lines(frontend_log)
    assert {line["trace_id"] for line in frontend_lines if line.get("event") == "hello from a view"} == {
        "e" * 32,
        "d" * 32,
    }
    # Django's error line for the 500 is in the failed request's trace; tracing itself logged nothing.
    [error] = [line for line in frontend_lines if line["logger"] == "django.request"]
    assert (error["trace_id"], error["span_id"]) == (failed.trace_id, failed.span_id)
    assert not [
        line
        for line in frontend_lines + backend_lines
        if line["logger"].startswith(("opentelemetry", "django_prodkit.tracing"))
    ]


@pytest.mark.parametrize("provider", ["ours", "own-provider"])
def test_user_and_instrumentation_spans_are_children_of_the_request_span(tmp_path: Path, provider: str) -> None:
    receiver = Receiver()
    try:
        with gunicorn(tmp_path, "blog", receiver.url, E2E_INSTRUMENT=provider) as (port, log):
            answers: list[tuple[int, dict[str, str], bytes]] = []
            # Until both workers have served some (each exports its own spans when it exits).
            with ThreadPoolExecutor(max_workers=4) as pool:
                while len({json.loads(body)["pid"] for _, _, body in answers}) < 2 and len(answers) < 200:
                    answers += pool.map(lambda _: get(port, "/otel/user-spans/"), range(8))
        count = len(answers)
        spans = receiver.wait_for(count * 4, timeout=20)
    finally:
        receiver.close()
    assert [status for status, _, _ in answers] == [200] * count
    assert len({json.loads(body)["pid"] for _, _, body in answers}) == 2
    trace_ids = [json.loads(body)["trace_id"] for _, _, body in answers]
    # Exactly four spans per request, none twice, each request's in one trace under its SERVER span.
    assert len(spans) == count * 4
    assert len({span.span_id for span in spans}) == count * 4
    service = "app-provider" if provider == "own-provider" else "blog"
    assert {span.resource["service.name"] for span in spans} == {service}
    for trace_id in trace_ids:
        mine = [span for span in spans if span.trace_id == trace_id]
        [server] = [span for span in mine if span.kind == "server"]
        [work] = [span for span in mine if span.name == "work"]
        [query] = [span for span in mine if span.kind == "client"]
        [render] = [span for span in mine if span.name == "render"]
        assert server.name == "GET /otel/user-spans/"
        assert work.parent_span_id == render.parent_span_id == server.span_id
        assert (query.parent_span_id, query.attributes["db.system"]) == (work.span_id, "sqlite")
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize("collector", ["refusing", "hanging"])
def test_a_dead_collector_fails_no_request_and_warns_once_per_worker(tmp_path: Path, collector: str) -> None:
    # A hanging collector: a socket that listens (so connections are made) and never answers.
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(64)
    port = hanging.getsockname()[1] if collector == "hanging" else free_port()
    endpoint = f"http://127.0.0.1:{port}/v1/traces"
    try:
        environment = {"OTEL_BSP_SCHEDULE_DELAY": "50", "OTEL_EXPORTER_OTLP_TIMEOUT": "1"}
        with gunicorn(tmp_path, "frontend", endpoint, **environment) as (port, log), ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda n: get(port, f"/api/v1/items/n{n}/")[0], range(200)))
    finally:
        hanging.close()
    assert statuses == [200] * 200
    warnings = [line for line in json_lines(log) if line["level"] in ("warning", "error", "critical")]
    assert 1 <= len(warnings) <= 2, warnings  # one per worker process at most
    assert all("Could not export spans" in line["event"] for line in warnings)
    assert "Traceback" not in log.read_text()
