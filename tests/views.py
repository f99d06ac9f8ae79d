from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator

import structlog
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from django_prodkit.request_id import get_request_id
from django_prodkit.tracing import get_trace_id

logger = logging.getLogger("tests.views")
slog = structlog.get_logger("tests.views")


def hello(request: HttpRequest) -> JsonResponse:
    logger.info("hello from a view")
    return JsonResponse({"request_id": get_request_id()})


def item(request: HttpRequest, slug: str) -> JsonResponse:
    slog.info("item viewed", slug=slug)
    return JsonResponse({"slug": slug, "request_id": get_request_id()})


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


def exposed(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("ok")
    response["Access-Control-Expose-Headers"] = "X-Custom"
    return response


def vary_cookie(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("ok")
    response["Vary"] = "Cookie"
    return response


def exposed_id(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("ok")
    response["Access-Control-Expose-Headers"] = "x-request-id, X-Other"
    return response


async def async_hello(request: HttpRequest) -> JsonResponse:
    seen = get_request_id()
    await asyncio.sleep(0.01)
    return JsonResponse({"request_id": get_request_id(), "seen_before_sleep": seen})


def whoami(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": request.user.get_username()})


async def async_traced(request: HttpRequest, slug: str) -> JsonResponse:
    """Annotates the current X-Ray segment between awaits, so segments mixed between requests would show."""
    from aws_xray_sdk.core import xray_recorder  # here, not at the top: tests check it stays unimported when off

    await asyncio.sleep(0.005)
    xray_recorder.put_annotation("slug", slug)
    await asyncio.sleep(0.005)
    return JsonResponse({"slug": slug, "request_id": get_request_id(), "trace_id": get_trace_id()})


def bad_request(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"error": "bad"}, status=400)


def streamed(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        for index in range(3):
            logger.info("streaming chunk %d", index)
            yield f"{index},{get_request_id()}\n".encode()

    return StreamingHttpResponse(chunks())


async def async_streamed(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for index in range(3):
            await asyncio.sleep(0)
            logger.info("async streaming chunk %d", index)
            yield f"{index},{get_request_id()}\n".encode()

    return StreamingHttpResponse(chunks())


def slow(request: HttpRequest) -> HttpResponse:
    time.sleep(0.03)
    return HttpResponse("slow")


def traced_work(request: HttpRequest) -> JsonResponse:
    """Uses the tracer interface as an HTTP client integration does: a client span and the headers it sends."""
    from django_prodkit.context.trace import get_span_id
    from django_prodkit.tracing.backend import get_tracer

    tracer = get_tracer()
    assert tracer is not None
    attributes = {"http.request.method": "GET", "url.full": "http://downstream.invalid/x"}
    span = tracer.start_span("GET", "client", attributes=attributes)
    carrier: dict[str, str] = {}
    tracer.inject(carrier)
    inner_span_id = get_span_id()
    span.set_attribute("http.response.status_code", 503)
    span.set_attribute("peer.note", "slow")
    span.end(error=True)
    request.prodkit_trace.set_attribute("db.query_count", 2)  # type: ignore[attr-defined]
    logger.info("after the call")
    return JsonResponse({"carrier": carrier, "inner_span_id": inner_span_id, "span_id": get_span_id()})


def call_out(request: HttpRequest, client: str) -> JsonResponse:
    """Calls the URL in ``?url=`` with one HTTP client and returns the headers the other side saw."""
    url = request.GET["url"]
    if client == "requests":
        import requests

        seen = requests.get(url, timeout=10).json()
    elif client == "httpx":
        import httpx

        with httpx.Client(timeout=10) as session:
            seen = session.get(url).json()
    else:
        import urllib3

        with urllib3.PoolManager() as pool:
            seen = json.loads(pool.request("GET", url, timeout=10).data)
    return JsonResponse({"seen": seen, "trace_id": get_trace_id()})


async def acall_out(request: HttpRequest) -> JsonResponse:
    """Calls ``?url=`` with httpx's async client."""
    import httpx

    async with httpx.AsyncClient(timeout=10) as session:
        response = await session.get(request.GET["url"])
    return JsonResponse({"seen": response.json(), "trace_id": get_trace_id()})


async def async_wait(request: HttpRequest) -> HttpResponse:
    """Long enough for a client to give up: Django cancels the view when the client disconnects."""
    await asyncio.sleep(30)
    return HttpResponse("waited")


def hangs(request: HttpRequest) -> HttpResponse:
    """Outlives any gunicorn ``--timeout`` a test gives, so the master kills the worker (``WORKER TIMEOUT``)."""
    time.sleep(30)
    return HttpResponse("too late")
