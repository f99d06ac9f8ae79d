"""The access line: one ``http_request`` event per request, at the cost of a plain stdlib logging call."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest

from django_prodkit.context.figures import add_query_fields
from django_prodkit.context.http import normalize_method, route_of, user_id_of
from django_prodkit.context.trace import request_trace_id

#: The ``msg`` of every access-log record.
ACCESS_EVENT = "http_request"

#: Longest path written to the access log; longer ones are cut.
_MAX_PATH_LENGTH = 512


def write_access_line(logger: logging.Logger, fields: Mapping[str, Any]) -> None:
    """Hand one ``http_request`` record with ``fields`` to ``logger``'s filters and handlers.

    What ``logger.info(ACCESS_EVENT, extra=fields)`` does, less the walk up the stack to find the caller (structlog's
    logger class makes that walk several times dearer): the record names this function as its origin.
    """
    record = logger.makeRecord(
        logger.name,
        logging.INFO,
        _ACCESS_SITE.co_filename,
        _ACCESS_SITE.co_firstlineno,
        ACCESS_EVENT,
        (),
        None,
        _ACCESS_SITE.co_name,
        fields,
    )
    logger.handle(record)


_ACCESS_SITE = write_access_line.__code__


def access_log_fields(
    request_method: str, route: str, path: str, status: int, duration_ms: float, user_id: Any
) -> dict[str, Any]:
    """The fields of one access-log event; ``path`` is cut to a bounded length."""
    return {
        "method": request_method,
        "route": route,
        "path": path[:_MAX_PATH_LENGTH],
        "status": status,
        "duration_ms": round(duration_ms, 3),
        "user_id": user_id,
    }


class AccessLog:
    """What ``AccessLogMiddleware`` writes after each response, configured once from ``PRODKIT``."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.logger = logging.getLogger(config["ACCESS_LOG_LOGGER"])
        self.exclude_paths = tuple(config["ACCESS_LOG_EXCLUDE_PATHS"])
        self.exclude_views = frozenset(config["ACCESS_LOG_EXCLUDE_VIEWS"])

    def write(self, request: HttpRequest, status: int, duration_ms: float) -> None:
        """Write the request's line, unless the logger is off or the path or view is excluded."""
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
        trace_id = request_trace_id(request)
        if trace_id is not None:
            # Placed above TracingMiddleware (as recommended), this line is written after the trace's context
            # was restored: its id comes from the request instead.
            fields["trace_id"] = trace_id
        add_query_fields(fields)
        write_access_line(self.logger, fields)
