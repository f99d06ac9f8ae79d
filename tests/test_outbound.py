"""Outbound propagation: real calls from views through requests, httpx (sync, async) and urllib3 to a local server."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import AsyncClient, Client

from django_prodkit import outbound
from tests.otlp_receiver import Receiver
from tests.test_tracing_otel import flushed, receiver, tracing
from tests.test_tracing_xray import Daemon, daemon
from tests.test_tracing_xray import tracing as xray_tracing

__all__ = ["daemon", "receiver", "tracing", "xray_tracing"]  # fixtures used by name below

CLIENTS = ["requests", "httpx", "urllib3"]

pytestmark = pytest.mark.timeout(60)


class Echo:
    """A local HTTP service that answers every GET with the request headers it received, as JSON."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                payload = json.dumps({name.lower(): value for name, value in self.headers.items()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/echo?token=secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def echo(settings: Any) -> Iterator[Echo]:
    assert outbound.install(CLIENTS) == CLIENTS
    server = Echo()
    yield server
    server.close()
    outbound.uninstall()


def _call(client: str, echo: Echo) -> tuple[dict[str, Any], Any]:
    if client == "httpx-async":

        async def run() -> Any:
            return await AsyncClient().get("/api/v1/call-out/async/", {"url": echo.url})

        response = asyncio.run(run())
    else:
        response = Client().get(f"/api/v1/call-out/{client}/", {"url": echo.url})
    assert response.status_code == 200
    return response.json(), response


@pytest.mark.parametrize("client", [*CLIENTS, "httpx-async"])
def test_the_request_id_goes_out_with_tracing_off(settings: Any, echo: Echo, client: str) -> None:
    settings.PRODKIT = {"PROPAGATE_OUTBOUND": CLIENTS}
    body, response = _call(client, echo)
    assert body["seen"]["x-request-id"] == response["X-Request-ID"]
    assert "traceparent" not in body["seen"]
    settings.PRODKIT = {"PROPAGATE_OUTBOUND": []}
    body, _ = _call(client, echo)
    assert "x-request-id" not in body["seen"]


@pytest.mark.parametrize("client", [*CLIENTS, "httpx-async"])
def test_otel_calls_are_client_spans_whose_context_goes_out(
    tracing: Any, receiver: Receiver, echo: Echo, settings: Any, client: str
) -> None:
    settings.PRODKIT = {**settings.PRODKIT, "PROPAGATE_OUTBOUND": CLIENTS}
    body, response = _call(client, echo)
    call, server = flushed(receiver)  # one span per call: requests' own urllib3 call is not a second one
    assert (call.kind, call.name, call.parent_span_id) == ("client", "GET", server.span_id)
    assert call.attributes["url.full"] == echo.url.split("?")[0]
    assert call.attributes["http.response.status_code"] == 200
    assert call.attributes["server.address"] == "127.0.0.1"
    seen = body["seen"]
    assert seen["traceparent"] == f"00-{server.trace_id}-{call.span_id}-01"
    assert seen["x-request-id"] == response["X-Request-ID"] == server.attributes["request_id"]
    assert body["trace_id"] == server.trace_id


@pytest.mark.parametrize("client", CLIENTS)
def test_xray_calls_are_subsegments_and_carry_both_headers(
    xray_tracing: Any, daemon: Daemon, echo: Echo, settings: Any, client: str
) -> None:
    settings.PRODKIT = {**settings.PRODKIT, "PROPAGATE_OUTBOUND": CLIENTS}
    body, _ = _call(client, echo)
    [segment] = daemon.segments()
    [subsegment] = segment["subsegments"]
    assert subsegment["namespace"] == "remote"
    assert subsegment["http"]["response"]["status"] == 200
    seen = body["seen"]
    assert seen["x-amzn-trace-id"] == f"Root={segment['trace_id']};Parent={subsegment['id']};Sampled=1"
    assert seen["traceparent"].split("-")[2] == subsegment["id"]


def test_calls_outside_a_request_are_left_alone(settings: Any, echo: Echo) -> None:
    import requests

    settings.PRODKIT = {"PROPAGATE_OUTBOUND": CLIENTS}
    seen = requests.get(echo.url, timeout=10).json()
    assert "x-request-id" not in seen
    assert "traceparent" not in seen
