"""X-Ray end to end: a UDP socket on 127.0.0.1 is the daemon; every datagram it receives is parsed."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import AsyncClient, Client

from django_prodkit.logging import JSONFormatter, RequestIDFilter
from django_prodkit.tracing.backend import reset_tracer

ROOT = Path(__file__).resolve().parent.parent
TRACE_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
PARENT = "53995c3f42cd8ad8"
REQUEST_ID = "django_prodkit.middleware.RequestIDMiddleware"
XRAY = "django_prodkit.middleware.XRayMiddleware"
ACCESS_LOG = "django_prodkit.middleware.AccessLogMiddleware"
NOTHING_SAMPLED = {"version": 2, "rules": [], "default": {"fixed_target": 0, "rate": 0.0}}


class Daemon:
    """A stand-in X-Ray daemon: a bound UDP socket whose datagrams are read without waiting."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"

    def segments(self) -> list[dict[str, Any]]:
        """Every document received so far (a send on loopback is in the buffer when sendto returns)."""
        found = []
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return found
            header, body = data.split(b"\n", 1)
            assert json.loads(header) == {"format": "json", "version": 1}
            found.append(json.loads(body))


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    listener = Daemon()
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", listener.address)
    reset_tracer()
    yield listener
    reset_tracer()
    listener.sock.close()


@pytest.fixture
def tracing(settings: Any, daemon: Daemon) -> Any:
    """Turn tracing on (every request sampled unless a test says otherwise), XRayMiddleware after the id one."""

    def configure(**xray: Any) -> None:
        settings.PRODKIT = {
            "SERVICE_NAME": "blog-api",
            "XRAY": {"ENABLED": True, "CENTRALIZED_SAMPLING": False, "SAMPLING": False, **xray},
        }
        rest = [name for name in settings.MIDDLEWARE if name not in (REQUEST_ID, XRAY)]
        settings.MIDDLEWARE = [REQUEST_ID, XRAY, *rest]

    configure()
    return configure


def test_one_segment_per_sampled_request_with_http_fields(tracing: Any, daemon: Daemon) -> None:
    response = Client().get("/api/v1/items/first-post/?secret=1", HTTP_USER_AGENT="pytest-agent")
    [segment] = daemon.segments()
    assert response.status_code == 200
    assert response["X-Amzn-Trace-Id"] == f"Root={segment['trace_id']}"
    assert segment["name"] == "blog-api"
    assert len(segment["id"]) == 16
    assert "parent_id" not in segment
    assert segment["end_time"] >= segment["start_time"]
    assert segment["http"] == {
        "request": {
            "method": "GET",
            "url": "http://testserver/api/v1/items/first-post/",
            "user_agent": "pytest-agent",
            "client_ip": "127.0.0.1",
        },
        "response": {"status": 200, "content_length": len(response.content)},
    }
    assert segment["annotations"] == {"route": "/api/v1/items/<slug:slug>/", "request_id": response["X-Request-ID"]}
    assert not any(segment.get(flag) for flag in ("error", "fault", "throttle"))
    assert segment["aws"]["xray"]["sdk"] == "X-Ray for Python"
    assert Client().get("/api/v1/hello/").status_code == 200
    assert len(daemon.segments()) == 1


def test_incoming_trace_is_continued_even_when_rules_say_no(tracing: Any, daemon: Daemon) -> None:
    tracing(SAMPLING=True, SAMPLING_RULES=NOTHING_SAMPLED)
    header = f"Root={TRACE_ROOT};Parent={PARENT};Sampled=1"
    response = Client().get("/api/v1/hello/", HTTP_X_AMZN_TRACE_ID=header)
    [segment] = daemon.segments()
    assert (segment["trace_id"], segment["parent_id"]) == (TRACE_ROOT, PARENT)
    assert response["X-Amzn-Trace-Id"] == f"Root={TRACE_ROOT}"


def test_upstream_not_sampled_is_obeyed(tracing: Any, daemon: Daemon) -> None:
    response = Client().get("/api/v1/hello/", HTTP_X_AMZN_TRACE_ID=f"Root={TRACE_ROOT};Sampled=0")
    assert daemon.segments() == []
    assert response.status_code == 200
    assert response["X-Amzn-Trace-Id"] == f"Root={TRACE_ROOT}"


def test_a_requested_decision_is_answered(tracing: Any, daemon: Daemon) -> None:
    response = Client().get("/api/v1/hello/", HTTP_X_AMZN_TRACE_ID=f"Root={TRACE_ROOT};Sampled=?")
    assert response["X-Amzn-Trace-Id"] == f"Root={TRACE_ROOT};Sampled=1"
    assert [s["trace_id"] for s in daemon.segments()] == [TRACE_ROOT]


def test_local_rules_file_decides(tracing: Any, daemon: Daemon, tmp_path: Path) -> None:
    rules = {
        "version": 2,
        "rules": [{"description": "no items", "host": "*", "http_method": "*", "url_path": "/api/v1/items/*",
                   "fixed_target": 0, "rate": 0.0}],
        "default": {"fixed_target": 0, "rate": 1.0},
    }  # fmt: skip
    path = tmp_path / "sampling.json"
    path.write_text(json.dumps(rules))
    tracing(SAMPLING=True, SAMPLING_RULES=str(path))
    client = Client()
    unsampled = client.get("/api/v1/items/a/")
    assert daemon.segments() == []
    assert unsampled["X-Amzn-Trace-Id"].startswith("Root=1-")
    client.get("/api/v1/hello/")
    assert [s["annotations"]["route"] for s in daemon.segments()] == ["/api/v1/hello/"]


@pytest.mark.parametrize(
    "header", ["Root=not-a-trace;Sampled=0", f"Root={TRACE_ROOT};Parent=zz", "\u00e9\u00e9", "Sampled=2"]
)
def test_malformed_trace_headers_are_ignored(tracing: Any, daemon: Daemon, header: str) -> None:
    response = Client().get("/api/v1/hello/", HTTP_X_AMZN_TRACE_ID=header)
    [segment] = daemon.segments()
    assert response.status_code == 200
    assert segment["trace_id"] != TRACE_ROOT
    assert "parent_id" not in segment
    assert response["X-Amzn-Trace-Id"] == f"Root={segment['trace_id']}"


def test_faults_record_the_exception_and_errors_are_flagged(tracing: Any, daemon: Daemon) -> None:
    client = Client(raise_request_exception=False)
    assert client.get("/api/v1/boom/").status_code == 500
    assert client.get("/nowhere/").status_code == 404
    fault, error = daemon.segments()
    assert fault["fault"] is True
    assert fault["http"]["response"]["status"] == 500
    [exception] = fault["cause"]["exceptions"]
    assert (exception["type"], exception["message"]) == ("RuntimeError", "boom")
    assert any(frame["label"] == "boom" for frame in exception["stack"])
    assert error["error"] is True
    assert "fault" not in error
    assert error["annotations"]["route"] == "<unmatched>"


def test_trace_id_is_in_log_lines(tracing: Any, daemon: Daemon) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    handler.addFilter(RequestIDFilter())
    view_logger = logging.getLogger("tests.views")
    view_logger.addHandler(handler)
    view_logger.setLevel(logging.INFO)
    try:
        Client().get("/api/v1/hello/", HTTP_X_AMZN_TRACE_ID=f"Root={TRACE_ROOT};Sampled=0")
        Client().get("/api/v1/hello/")
    finally:
        view_logger.removeHandler(handler)
        view_logger.setLevel(logging.NOTSET)
    unsampled, sampled = (json.loads(line) for line in stream.getvalue().splitlines())
    assert unsampled["trace_id"] == TRACE_ROOT
    assert sampled["trace_id"] == daemon.segments()[0]["trace_id"]


def test_the_access_line_above_the_tracing_middleware_has_the_trace_id(
    tracing: Any, daemon: Daemon, settings: Any
) -> None:
    # The recommended order puts AccessLogMiddleware above TracingMiddleware: its line is written after the
    # trace's context is restored, and must still name the request's trace.
    settings.MIDDLEWARE = [REQUEST_ID, ACCESS_LOG, XRAY]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    access_logger = logging.getLogger("django_prodkit.access")
    access_logger.addHandler(handler)
    access_logger.setLevel(logging.INFO)
    try:
        Client().get("/api/v1/hello/", HTTP_X_AMZN_TRACE_ID=f"Root={TRACE_ROOT};Sampled=0")
        Client().get("/api/v1/hello/")
    finally:
        access_logger.removeHandler(handler)
        access_logger.setLevel(logging.NOTSET)
    unsampled, sampled = (json.loads(line) for line in stream.getvalue().splitlines())
    assert unsampled["trace_id"] == TRACE_ROOT
    assert sampled["trace_id"] == daemon.segments()[0]["trace_id"]


def test_no_daemon_or_unresolvable_daemon_never_breaks_a_request(
    tracing: Any, daemon: Daemon, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", "xray-daemon.invalid:2000")
    with caplog.at_level(logging.WARNING):
        statuses = [Client().get("/api/v1/hello/").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert [r.name for r in caplog.records if r.levelno >= logging.WARNING] == ["django_prodkit.tracing"]
    closed = Daemon()
    closed.sock.close()  # nothing listens on that port any more
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", closed.address)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        statuses = [Client().get("/api/v1/hello/").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) <= 1


def test_concurrent_async_requests_never_mix_segments(tracing: Any, daemon: Daemon) -> None:
    count = 24
    roots = {f"item-{n}": f"1-5759e988-{n:024x}" for n in range(count)}

    async def one(client: AsyncClient, slug: str) -> Any:
        header = {"X-Amzn-Trace-Id": f"Root={roots[slug]};Sampled=1"}
        return await client.get(f"/api/v1/async-traced/{slug}/", headers=header)

    async def run() -> list[Any]:
        client = AsyncClient()
        return list(await asyncio.gather(*(one(client, slug) for slug in roots)))

    responses = asyncio.run(run())
    segments = {s["trace_id"]: s for s in daemon.segments()}
    assert len(segments) == count
    for response in responses:
        body = response.json()
        segment = segments[roots[body["slug"]]]
        assert body["trace_id"] == roots[body["slug"]]
        assert segment["annotations"] == {
            "slug": body["slug"],
            "route": "/api/v1/async-traced/<slug:slug>/",
            "request_id": body["request_id"],
        }
        assert response["X-Amzn-Trace-Id"] == f"Root={roots[body['slug']]}"


SETTINGS = """
from tests.settings import *
PRODKIT = {"SERVICE_NAME": "cmd-test", "XRAY": {"ENABLED": True, "CENTRALIZED_SAMPLING": False, "SAMPLING": False,
           "RECORD_DB_QUERIES": True, "PATCH_MODULES": ["sqlite3"], "CONTEXT_MISSING": %r}}
MIDDLEWARE = ["django_prodkit.middleware.RequestIDMiddleware", "django_prodkit.middleware.XRayMiddleware",
              *MIDDLEWARE[1:]]
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
           "root": {"handlers": ["stderr"], "level": "WARNING"}}
"""

COMMAND = """
import json, sqlite3, threading
import django
django.setup()
from django.core.management import call_command
from django.test import Client
call_command("migrate", verbosity=0)  # queries outside any request, through the patched cursor

def work():
    connection = sqlite3.connect(":memory:")
    connection.execute("select 1")
    connection.close()
    from aws_xray_sdk.core import xray_recorder
    xray_recorder.put_annotation("outside", "request")

thread = threading.Thread(target=work)
thread.start()
thread.join()
from django.contrib.auth.models import User
user = User.objects.create_user("ada")
client = Client()
client.force_login(user)
response = client.get("/api/v1/whoami/")
print(json.dumps({"status": response.status_code, "user": user.pk}))
"""


def _run_command(tmp_path: Path, daemon: Daemon, context_missing: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "cmd_settings.py").write_text(SETTINGS % context_missing)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENABLE_XRAY", "AWS_XRAY"))}
    env.update(
        DJANGO_SETTINGS_MODULE="cmd_settings",
        PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}",
        AWS_XRAY_DAEMON_ADDRESS=daemon.address,
    )
    return subprocess.run(
        [sys.executable, "-c", COMMAND], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_management_command_and_threads_are_silent_and_queries_traced(daemon: Daemon, tmp_path: Path) -> None:
    done = _run_command(tmp_path, daemon, "IGNORE_ERROR")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    result = json.loads(done.stdout)
    [segment] = daemon.segments()  # migrate, the thread and force_login sent nothing
    assert result["status"] == 200
    assert segment["name"] == "cmd-test"
    assert segment["user"] == str(result["user"])
    queries = [sub for sub in segment["subsegments"] if sub.get("namespace") == "remote"]
    assert queries
    assert all(sub["sql"]["database_type"] == "sqlite" for sub in queries)
    assert "outside" not in json.dumps(segment)
    # The same run with the SDK's own default strategy is what the silence is about.
    loud = _run_command(tmp_path, daemon, "LOG_ERROR")
    assert loud.returncode == 0, loud.stderr
    assert "cannot find the current segment" in loud.stderr
