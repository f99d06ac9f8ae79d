"""The segment document written directly against the one aws-xray-sdk serialises, for the same request."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.urls import resolve

from django_prodkit.tracing.backend import get_tracer, reset_tracer

TRACE_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
PARENT = "53995c3f42cd8ad8"
INCOMING = f"Root={TRACE_ROOT};Parent={PARENT};Sampled=1;Lineage=a87bd80c:0"
# Differ between any two segments, whichever way they are written.
PER_SEGMENT = ("id", "start_time", "end_time")


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", f"127.0.0.1:{sock.getsockname()[1]}")
    reset_tracer()
    yield sock
    reset_tracer()
    sock.close()


@pytest.fixture
def tracer(settings: Any, daemon: socket.socket) -> Any:
    settings.PRODKIT = {
        "SERVICE_NAME": "blog-api (eu)",  # the SDK strips "(" and ")" from segment names
        "XRAY": {"ENABLED": True, "CENTRALIZED_SAMPLING": False, "SAMPLING": False},
    }
    return get_tracer()


def _received(daemon: socket.socket) -> list[dict[str, Any]]:
    found = []
    while True:
        try:
            data = daemon.recv(65536)
        except BlockingIOError:
            return found
        header, body = data.split(b"\n", 1)
        assert json.loads(header) == {"format": "json", "version": 1}
        found.append(json.loads(body))


def _trace(
    tracer: Any, daemon: socket.socket, request: HttpRequest, response: HttpResponse, during: Callable[[], None]
) -> dict[str, Any]:
    trace = tracer.begin(request)
    try:
        during()
        trace.finish(request, response)
    finally:
        trace.close()
    [document] = _received(daemon)
    return document


def _sdk_segment() -> Any:
    """What a patched library or the view does first: ask the recorder for the current segment."""
    from aws_xray_sdk.core import xray_recorder

    return xray_recorder.current_segment()


def _request(method: str, **meta: Any) -> HttpRequest:
    request = RequestFactory().generic(method, "/api/v1/items/first-post/?q=1", HTTP_X_AMZN_TRACE_ID=INCOMING, **meta)
    request.resolver_match = resolve("/api/v1/items/first-post/")
    return request


def _response(status: int, length: bool = True) -> HttpResponse:
    response = HttpResponse(b"x" * 12, status=status)
    if length:
        response["Content-Length"] = "12"
    return response


def _without(document: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in document.items() if key not in (*PER_SEGMENT, *keys)}


CASES = {
    "plain": (
        lambda: _request("GET", HTTP_USER_AGENT="curl/8.5", HTTP_HOST="api.example.com:8443"),
        lambda: _response(200),
    ),
    "forwarded, odd method, signed in, not found": (
        lambda: _request("BREW", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.1", HTTP_USER_AGENT='é "q" \\ \n\x00'),
        lambda: _response(404, length=False),
    ),
    "bad host, throttled": (lambda: _request("POST", HTTP_HOST="bad host/\u00e9"), lambda: _response(429)),
    "fault": (lambda: _request("DELETE", REMOTE_ADDR=""), lambda: _response(503)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_direct_document_equals_the_sdks_serialisation(tracer: Any, daemon: socket.socket, case: str) -> None:
    make_request, make_response = CASES[case]
    requests = [make_request(), make_request()]
    if "signed in" in case:
        for request in requests:
            request.user = User(pk=42, username="ada")
    direct = _trace(tracer, daemon, requests[0], make_response(), lambda: None)
    through_sdk = _trace(tracer, daemon, requests[1], make_response(), _sdk_segment)
    assert _without(direct) == _without(through_sdk)
    assert direct.keys() == through_sdk.keys()
    assert direct["name"] == "blog-api eu"
    assert (direct["trace_id"], direct["parent_id"]) == (TRACE_ROOT, PARENT)
    assert direct["annotations"]["route"] == "/api/v1/items/<slug:slug>/"
    assert direct["http"]["request"]["url"].endswith("/api/v1/items/first-post/")


def test_direct_document_fields(tracer: Any, daemon: socket.socket) -> None:
    request = _request("BREW", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.1", HTTP_HOST="bad host")
    request.user = User(pk=42, username="ada")
    request.request_id = "req-1"  # type: ignore[attr-defined]
    document = _trace(tracer, daemon, request, _response(429), lambda: None)
    assert document["http"] == {
        "request": {
            "method": "OTHER",
            "url": "http://testserver/api/v1/items/first-post/",
            "client_ip": "203.0.113.9",
            "x_forwarded_for": True,
        },
        "response": {"status": 429, "content_length": 12},
    }
    assert document["annotations"] == {"route": "/api/v1/items/<slug:slug>/", "request_id": "req-1"}
    assert (document["user"], document["error"], document["throttle"]) == ("42", True, True)
    assert "fault" not in document
    assert document["in_progress"] is False
    assert document["service"]["runtime"]
    assert document["aws"]["xray"]["sdk"] == "X-Ray for Python"


def test_exception_and_subsegments_add_only_their_own_members(tracer: Any, daemon: socket.socket) -> None:
    from aws_xray_sdk.core import xray_recorder

    def fail() -> None:
        try:
            raise ValueError("no such item")
        except ValueError as exc:
            trace.record_exception(exc)

    def query() -> None:
        subsegment = xray_recorder.begin_subsegment("blog@sqlite", "remote")
        subsegment.set_sql({"database_type": "sqlite", "sanitized_query": "SELECT 1"})
        xray_recorder.end_subsegment()

    plain = _trace(tracer, daemon, _request("GET"), _response(500), lambda: None)
    trace = tracer.begin(_request("GET"))
    try:
        fail()
        trace.finish(_request("GET"), _response(500))
    finally:
        trace.close()
    [failed] = _received(daemon)
    queried = _trace(tracer, daemon, _request("GET"), _response(500), query)
    assert _without(failed, "cause") == _without(plain)
    assert _without(queried, "subsegments") == _without(plain)
    [exception] = failed["cause"]["exceptions"]
    assert (exception["type"], exception["message"]) == ("ValueError", "no such item")
    assert any(frame["label"] == "fail" for frame in exception["stack"])
    [subsegment] = queried["subsegments"]
    assert subsegment["sql"] == {"database_type": "sqlite", "sanitized_query": "SELECT 1"}
    assert (subsegment["trace_id"], subsegment["parent_id"]) == (TRACE_ROOT, queried["id"])


def test_segment_asked_for_after_the_request_is_a_stand_in(tracer: Any, daemon: socket.socket) -> None:
    request = _request("GET")
    trace = tracer.begin(request)
    try:
        trace.finish(request, _response(200))
        late = _sdk_segment()
    finally:
        trace.close()
    assert late.sampled is False
    assert len(_received(daemon)) == 1


class _CentralizedRules:
    """Stands in for the X-Ray service's sampling rules (AWS itself): every request matches one named rule."""

    def should_trace(self, sampling_req: dict[str, Any]) -> str:
        return "api-requests"


def test_sampling_rule_name_is_written_both_ways(
    tracer: Any, daemon: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracer, "sampling", True)
    monkeypatch.setattr(tracer, "sampler", _CentralizedRules())

    def request() -> HttpRequest:
        plain = RequestFactory().get("/api/v1/hello/")
        plain.resolver_match = resolve("/api/v1/hello/")
        return plain

    direct = _trace(tracer, daemon, request(), _response(200), lambda: None)
    through_sdk = _trace(tracer, daemon, request(), _response(200), _sdk_segment)
    assert direct["aws"]["xray"]["sampling_rule_name"] == "api-requests"
    assert _without(direct, "trace_id") == _without(through_sdk, "trace_id")
