"""The middleware classes users put in ``MIDDLEWARE``; the work happens in the modules they call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponse
from django.urls import ResolverMatch
from structlog.contextvars import bind_contextvars, reset_contextvars

from django_prodkit.conf import get_config
from django_prodkit.context.ids import mark_finished_in_thread, reset_request_id, set_request_id
from django_prodkit.context.trace import publish_request_trace_id
from django_prodkit.db import request_counter
from django_prodkit.health import endpoints as health
from django_prodkit.logs.access import AccessLog
from django_prodkit.request_id.headers import EXPOSE_HEADERS, RequestIDHeaders
from django_prodkit.tracing.base import add_query_figures

GetResponse = Callable[[HttpRequest], Any]

#: nginx's "client closed request": recorded for an ASGI request whose client disconnected while its view
#: ran (Django then cancels the view, and ``CancelledError`` passes through every ``__acall__``).
CLIENT_CLOSED_REQUEST = 499


class _HybridMiddleware:
    """Sync and async capable: the mode is chosen once, from the handler below, when the stack is built."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            # Every subclass defines __call__ (handing off to __acall__ in async mode).
            markcoroutinefunction(cast(GetResponse, self))


class RequestIDMiddleware(_HybridMiddleware):
    """Gives every request an id (kept from a valid ``X-Request-ID``, else new) and echoes it back.

    The id is available from :func:`django_prodkit.context.get_request_id`, as ``request.request_id``,
    in structlog's context variables, and in every log record through
    :class:`django_prodkit.logging.RequestIDFilter`. Place it first in ``MIDDLEWARE``.
    """

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self.headers = RequestIDHeaders(get_config())
        # Outermost of ours, so the database figures cover the whole request; None when nothing reports them.
        self.db_counter = request_counter()

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        request_id = self.headers.request_id(request)
        token = set_request_id(request_id)
        bound = bind_contextvars(request_id=request_id)
        counter = self.db_counter
        counting = counter.begin() if counter is not None else None
        try:
            response = self.get_response(request)
            self.headers.add_to(request, response, request_id)
            return response
        finally:
            if counter is not None and counting is not None:
                counter.end(counting, request)
            reset_contextvars(**bound)
            reset_request_id(token)
            mark_finished_in_thread(request_id)  # runserver's django.server line comes after, in this thread

    async def __acall__(self, request: HttpRequest) -> Any:
        request_id = self.headers.request_id(request)
        token = set_request_id(request_id)
        bound = bind_contextvars(request_id=request_id)
        counter = self.db_counter
        counting = counter.begin() if counter is not None else None
        try:
            response = await self.get_response(request)
            self.headers.add_to(request, response, request_id)
            return response
        finally:
            if counter is not None and counting is not None:
                counter.end(counting, request)
            reset_contextvars(**bound)
            reset_request_id(token)


class AccessLogMiddleware(_HybridMiddleware):
    """Writes one structured ``http_request`` event per request: method, route, path, status, duration.

    Place it right after ``RequestIDMiddleware``, above every middleware that can answer a request itself, so it
    logs what the client got (an ``APPEND_SLASH`` or HTTPS redirect, a 304, a bad-``Host`` 400); system check
    ``prodkit.W051``. It reads the user after the response, when authentication below it has loaded it.
    """

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self.access_log = AccessLog(get_config())

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        start = time.perf_counter()
        response = self.get_response(request)
        self.access_log.write(request, response.status_code, (time.perf_counter() - start) * 1000.0)
        return response

    async def __acall__(self, request: HttpRequest) -> Any:
        start = time.perf_counter()
        try:
            response = await self.get_response(request)
        except asyncio.CancelledError:
            self.access_log.write(request, CLIENT_CLOSED_REQUEST, (time.perf_counter() - start) * 1000.0)
            raise
        self.access_log.write(request, response.status_code, (time.perf_counter() - start) * 1000.0)
        return response


class HealthCheckMiddleware(_HybridMiddleware):
    """Serves the health endpoints before host validation, so a load balancer probing by IP gets an answer.

    Place it after ``RequestIDMiddleware`` and ``AccessLogMiddleware``, above Django's middleware. Only the paths in
    ``HEALTH_CHECK_PATHS`` (by default those of ``prodkit:healthcheck`` and ``prodkit:readiness``) are answered
    here, without the middleware below it;
    every other request passes through untouched and keeps Django's ``ALLOWED_HOSTS`` validation.
    """

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        self.paths = tuple(get_config()["HEALTH_CHECK_PATHS"])
        self.matches: dict[str, ResolverMatch] | None = None
        from django_prodkit.metrics.recording import recorder_for

        # Health checks answered here never reach MetricsMiddleware below, and users expect to see them counted.
        self.recorder = recorder_for(f"{type(self).__module__}.{type(self).__qualname__}")

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        match = self._match(request)
        if match is None:
            return self.get_response(request)
        if self.recorder is None:
            return health.serve(request, match)
        start = time.perf_counter()
        response = health.serve(request, match)
        self.recorder.record(request, response.status_code, time.perf_counter() - start)
        return response

    async def __acall__(self, request: HttpRequest) -> Any:
        match = self._match(request)
        if match is None:
            return await self.get_response(request)
        # Readiness blocks until its checks answer or time out: keep that off the event loop and off the
        # single thread Django shares between sync views.
        start = time.perf_counter()
        try:
            response = await sync_to_async(health.serve, thread_sensitive=False)(request, match)
        except asyncio.CancelledError:
            if self.recorder is not None:
                self.recorder.record(request, CLIENT_CLOSED_REQUEST, time.perf_counter() - start)
            raise
        if self.recorder is not None:
            self.recorder.record(request, response.status_code, time.perf_counter() - start)
        return response

    def _match(self, request: HttpRequest) -> ResolverMatch | None:
        matches = self.matches
        if matches is None:
            # Resolved on the first request, when the URLconf is loaded and the script prefix known.
            matches = self.matches = health.endpoint_matches(self.paths)
        return matches.get(request.path)


class MetricsMiddleware(_HybridMiddleware):
    """Counts every request by method, URL pattern and status, with its duration, for the metrics endpoint.

    Counts are exact across gunicorn workers when ``PROMETHEUS_MULTIPROC_DIR`` is set (see the Metrics docs).
    Place it high in ``MIDDLEWARE``, after ``RequestIDMiddleware`` and ``HealthCheckMiddleware`` and above
    Django's middleware, so the duration covers the rest.
    """

    def __init__(self, get_response: GetResponse) -> None:
        # Imported here: prometheus_client picks its mode on import, which must follow the settings.
        from django_prodkit.metrics.recording import RequestRecorder

        super().__init__(get_response)
        self.recorder = RequestRecorder()

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        start = time.perf_counter()
        response = self.get_response(request)
        self.recorder.record(request, response.status_code, time.perf_counter() - start)
        return response

    async def __acall__(self, request: HttpRequest) -> Any:
        start = time.perf_counter()
        try:
            response = await self.get_response(request)
        except asyncio.CancelledError:
            self.recorder.record(request, CLIENT_CLOSED_REQUEST, time.perf_counter() - start)
            raise
        self.recorder.record(request, response.status_code, time.perf_counter() - start)
        return response


class TracingMiddleware(_HybridMiddleware):
    """Traces every request with the configured backend (OpenTelemetry or AWS X-Ray); ids in every log line.

    Off unless ``OTEL.ENABLED`` / ``ENABLE_OTEL=true`` or ``XRAY.ENABLED`` / ``ENABLE_XRAY=true``: then it
    removes itself at startup and no tracing SDK is imported. Place it after ``RequestIDMiddleware``,
    ``HealthCheckMiddleware`` and ``MetricsMiddleware``, above Django's middleware. While a request is traced,
    ``request.prodkit_trace`` is its trace; a tracing failure never fails the request.
    """

    def __init__(self, get_response: GetResponse) -> None:
        config = get_config()
        if not (config["OTEL"]["ENABLED"] or config["XRAY"]["ENABLED"]):
            raise MiddlewareNotUsed("Tracing is off (PRODKIT['OTEL'/'XRAY']['ENABLED'], ENABLE_OTEL, ENABLE_XRAY).")
        from django_prodkit.tracing.backend import get_tracer

        tracer = get_tracer()
        if tracer is None:
            raise MiddlewareNotUsed(
                "Tracing cannot run here; see manage.py check (prodkit.E030-E035, prodkit.E060-E064)."
            )
        self.tracer = tracer
        super().__init__(get_response)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        trace = self.tracer.begin(request)
        request.prodkit_trace = trace  # type: ignore[attr-defined]
        publish_request_trace_id(request, trace.trace_id)
        try:
            response = self.get_response(request)
            add_query_figures(trace)
            trace.finish(request, response)
            return response
        finally:
            trace.close()

    async def __acall__(self, request: HttpRequest) -> Any:
        trace = self.tracer.begin(request)
        request.prodkit_trace = trace  # type: ignore[attr-defined]
        publish_request_trace_id(request, trace.trace_id)
        try:
            try:
                response = await self.get_response(request)
            except asyncio.CancelledError:
                add_query_figures(trace)
                trace.finish(request, HttpResponse(status=CLIENT_CLOSED_REQUEST))
                raise
            add_query_figures(trace)
            trace.finish(request, response)
            return response
        finally:
            trace.close()

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        """Record the view's exception on the request's trace; Django then renders the 500."""
        trace = request.__dict__.get("prodkit_trace")
        if trace is not None:
            trace.record_exception(exception)


#: The name this middleware had when X-Ray was the only backend; existing settings keep working.
XRayMiddleware = TracingMiddleware


__all__ = [
    "EXPOSE_HEADERS",
    "AccessLogMiddleware",
    "HealthCheckMiddleware",
    "MetricsMiddleware",
    "RequestIDMiddleware",
    "TracingMiddleware",
    "XRayMiddleware",
]
