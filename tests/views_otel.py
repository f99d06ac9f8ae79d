"""Views that trace their own work as users do: the OpenTelemetry API, an instrumented driver, ``span()``."""

from __future__ import annotations

import os
import sqlite3

from django.http import HttpRequest, JsonResponse
from opentelemetry import trace

from django_prodkit.tracing import get_trace_id, span


def user_spans(request: HttpRequest) -> JsonResponse:
    """A span from the standard API, a query through the sqlite3 driver (instrumented or not), a ``span()``."""
    with trace.get_tracer("my.app").start_as_current_span("work") as work:
        work.set_attribute("app.step", "load")
        connection = sqlite3.connect(":memory:")
        try:
            cursor = connection.cursor()
            cursor.execute("SELECT 1")
            rows = cursor.fetchall()
        finally:
            connection.close()
    with span("render", items=len(rows)) as rendering:
        rendering.set_attribute("app.format", "json")
    return JsonResponse({"trace_id": get_trace_id(), "rows": len(rows), "pid": os.getpid()})


def failing_span(request: HttpRequest) -> JsonResponse:
    """A ``span()`` left by an exception: recorded on it, and still raised to the view."""
    try:
        with span("charge", amount=3):
            raise ValueError("card declined")
    except ValueError:
        pass
    return JsonResponse({"trace_id": get_trace_id()})


async def async_span(request: HttpRequest) -> JsonResponse:
    """``async with span(...)`` in an async view."""
    async with span("async-work", kind="async") as work:
        work.set_attribute("app.awaited", True)
    return JsonResponse({"trace_id": get_trace_id()})
