"""The middleware classes users put in ``MIDDLEWARE``; the work happens in the modules they call."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import ResolverMatch
from django.utils.cache import patch_vary_headers
from structlog.contextvars import bind_contextvars, reset_contextvars

from django_prodkit import db, health
from django_prodkit.conf import get_config
from django_prodkit.http import normalize_method, route_of, user_id_of
from django_prodkit.logging import access_log_fields, write_access_line
from django_prodkit.request_id import (
    aiterate_with_request_id,
    generate_request_id,
    is_valid_request_id,
    iterate_with_request_id,
    mark_finished_in_thread,
    reset_request_id,
    set_request_id,
)

GetResponse = Callable[[HttpRequest], Any]

EXPOSE_HEADERS = "Access-Control-Expose-Headers"

#: nginx's "client closed request": recorded for an ASGI request whose client disconnected while its view
#: ran (Django then cancels the view, and ``CancelledError`` passes through every ``__acall__``).
CLIENT_CLOSED_REQUEST = 499

# Only cross-origin requests carry Origin, and only their responses need the expose header.
_ORIGIN_META_KEY = "HTTP_ORIGIN"
_VARY_ORIGIN = ("Origin",)


def _meta_key(header: str) -> str:
    return "HTTP_" + header.upper().replace("-", "_")


def _bind_stream(response: Any, request_id: str) -> None:
    content = response.streaming_content
    if response.is_async:
        response.streaming_content = aiterate_with_request_id(content, request_id)
    else:
        response.streaming_content = iterate_with_request_id(content, request_id)


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

    The id is available from :func:`django_prodkit.request_id.get_request_id`, as ``request.request_id``,
    in structlog's context variables, and in every log record through
    :class:`django_prodkit.logging.RequestIDFilter`. Place it first in ``MIDDLEWARE``.
    """

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        config = get_config()
        self.header = config["REQUEST_ID_HEADER"]
        self.meta_key = _meta_key(self.header)
        self.trust_incoming = config["REQUEST_ID_TRUST_INCOMING"]
        self.expose = config["REQUEST_ID_EXPOSE_HEADER"]
        # Outermost of ours, so the database figures cover the whole request; None when nothing reports them.
        self.db_counter = db.request_counter()

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        request_id = self._request_id(request)
        token = set_request_id(request_id)
        bound = bind_contextvars(request_id=request_id)
        counter = self.db_counter
        counting = counter.begin() if counter is not None else None
        try:
            response = self.get_response(request)
            self._add_headers(request, response, request_id)
            return response
        finally:
            if counter is not None and counting is not None:
                counter.end(counting, request)
            reset_contextvars(**bound)
            reset_request_id(token)
            mark_finished_in_thread(request_id)  # runserver's django.server line comes after, in this thread

    async def __acall__(self, request: HttpRequest) -> Any:
        request_id = self._request_id(request)
        token = set_request_id(request_id)
        bound = bind_contextvars(request_id=request_id)
        counter = self.db_counter
        counting = counter.begin() if counter is not None else None
        try:
            response = await self.get_response(request)
            self._add_headers(request, response, request_id)
            return response
        finally:
            if counter is not None and counting is not None:
                counter.end(counting, request)
            reset_contextvars(**bound)
            reset_request_id(token)

    def _request_id(self, request: HttpRequest) -> str:
        incoming = request.META.get(self.meta_key)
        if incoming is not None and self.trust_incoming and is_valid_request_id(incoming):
            request_id: str = incoming
        else:
            request_id = generate_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        return request_id

    def _add_headers(self, request: HttpRequest, response: HttpResponseBase, request_id: str) -> None:
        response[self.header] = request_id
        if response.streaming and getattr(response, "file_to_stream", None) is None:
            # The body is produced after this middleware returns; keep the id current while it is.
            _bind_stream(response, request_id)
        if not self.expose:
            return
        # Whether the expose header is sent depends on Origin: a shared cache must keep the two answers apart.
        if "Vary" in response:
            patch_vary_headers(response, _VARY_ORIGIN)
        else:
            response["Vary"] = "Origin"
        if _ORIGIN_META_KEY not in request.META:
            return
        exposed = response.get(EXPOSE_HEADERS)
        if not exposed:
            response[EXPOSE_HEADERS] = self.header
        elif self.header.lower() not in (name.strip().lower() for name in exposed.split(",")):
            response[EXPOSE_HEADERS] = f"{exposed}, {self.header}"


class AccessLogMiddleware(_HybridMiddleware):
    """Writes one structured ``http_request`` event per request: method, route, path, status, duration.

    Place it right after ``RequestIDMiddleware``, above every middleware that can answer a request itself, so it
    logs what the client got (an ``APPEND_SLASH`` or HTTPS redirect, a 304, a bad-``Host`` 400); system check
    ``prodkit.W051``. It reads the user after the response, when authentication below it has loaded it.
    """

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        config = get_config()
        self.logger = logging.getLogger(config["ACCESS_LOG_LOGGER"])
        self.exclude_paths = tuple(config["ACCESS_LOG_EXCLUDE_PATHS"])
        self.exclude_views = frozenset(config["ACCESS_LOG_EXCLUDE_VIEWS"])

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        start = time.perf_counter()
        response = self.get_response(request)
        self._log(request, response, start)
        return response

    async def __acall__(self, request: HttpRequest) -> Any:
        start = time.perf_counter()
        try:
            response = await self.get_response(request)
        except asyncio.CancelledError:
            self._log_status(request, CLIENT_CLOSED_REQUEST, start)
            raise
        self._log(request, response, start)
        return response

    def _log(self, request: HttpRequest, response: HttpResponseBase, start: float) -> None:
        self._log_status(request, response.status_code, start)

    def _log_status(self, request: HttpRequest, status: int, start: float) -> None:
        duration_ms = (time.perf_counter() - start) * 1000.0
        if not self.logger.isEnabledFor(logging.INFO):
            return
        path = request.path
        if self.exclude_paths and path.startswith(self.exclude_paths):
            return
        match = request.resolver_match
        if match is not None and match.view_name in self.exclude_views:
            return
        fields = access_log_fields(
            normalize_method(request.method),
            route_of(request),
            path,
            status,
            duration_ms,
            user_id_of(request),
        )
        trace = request.__dict__.get("prodkit_trace")
        if trace is not None and trace.trace_id is not None:
            # Placed above TracingMiddleware (as recommended), this line is written after the trace's context
            # was restored: its id comes from the request's trace instead.
            fields["trace_id"] = trace.trace_id
        db.add_log_fields(fields)
        write_access_line(self.logger, fields)


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
        try:
            response = self.get_response(request)
            db.annotate_trace(trace)
            trace.finish(request, response)
            return response
        finally:
            trace.close()

    async def __acall__(self, request: HttpRequest) -> Any:
        trace = self.tracer.begin(request)
        request.prodkit_trace = trace  # type: ignore[attr-defined]
        try:
            try:
                response = await self.get_response(request)
            except asyncio.CancelledError:
                db.annotate_trace(trace)
                trace.finish(request, HttpResponse(status=CLIENT_CLOSED_REQUEST))
                raise
            db.annotate_trace(trace)
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
    "AccessLogMiddleware",
    "HealthCheckMiddleware",
    "MetricsMiddleware",
    "RequestIDMiddleware",
    "TracingMiddleware",
    "XRayMiddleware",
]
