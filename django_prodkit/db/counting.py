"""Each request's database cost: its queries counted and timed on every connection it uses, and the warning line.

One execute wrapper is added to every database connection (``connection.execute_wrapper``'s list, so it sees
every query whichever alias or thread runs it). It does nothing unless a request is being counted: the counts
live in a ContextVar, which asgiref copies into ``sync_to_async`` threads, so an async view's ORM calls are
counted in the request that made them and a connection's wrapper never carries counts into the next request.
When nothing reports the figures (no access log, metrics or tracing, no warning threshold), no wrapper is
added at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import Token
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created
from django.http import HttpRequest

from django_prodkit.conf import get_config
from django_prodkit.context.figures import (
    QueryFigures,
    publish_query_figures,
    query_figures,
    unpublish_query_figures,
)
from django_prodkit.context.http import normalize_method, route_of
from django_prodkit.db.shapes import repeated_shapes
from django_prodkit.db.warning import REASON_DURATION, REASON_QUERIES, WarningLimiter, write_warning
from django_prodkit.stack import is_kind

#: Middleware whose output includes the figures (or a subclass of one); counting is on when one is installed.
REPORTING_MIDDLEWARE = ("django_prodkit.middleware.AccessLogMiddleware", "django_prodkit.middleware.MetricsMiddleware")

#: Distinct statements remembered per request for the warning; later new ones are counted but not named.
_MAX_STATEMENTS = 1000

_DISPATCH_UID = "django_prodkit.db.install"


class QueryStats:
    """The queries of one request so far: how many, their total time, and (for the warning) which."""

    __slots__ = ("count", "lock", "seconds", "started", "statements")

    def __init__(self, remember_statements: bool) -> None:
        # An async view may run several sync_to_async calls at once, each in its own thread and connection.
        self.lock = threading.Lock()
        self.count = 0
        self.seconds = 0.0
        self.started = time.perf_counter()
        # ``(vendor, sql)``: the vendor says which literal forms the shape takes out.
        self.statements: dict[tuple[str, str], int] | None = {} if remember_statements else None

    @property
    def milliseconds(self) -> float:
        """Total time spent in the database, in milliseconds, rounded to microseconds."""
        return round(self.seconds * 1000.0, 3)


def current() -> QueryStats | None:
    """The figures of the request being served, or ``None`` outside a counted request."""
    figures = query_figures()
    return figures if isinstance(figures, QueryStats) else None


def count_query(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    """The execute wrapper: times the query into the current request's figures, if a request is counted."""
    stats = query_figures()
    if not isinstance(stats, QueryStats):
        return execute(sql, params, many, context)
    start = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        elapsed = time.perf_counter() - start
        with stats.lock:
            stats.seconds += elapsed
            stats.count += 1
            statements = stats.statements
            # Raw cursors may pass other objects (psycopg's sql.Composed, which is not hashable): not named.
            if statements is not None and type(sql) is str:
                key = (_vendor_of(context), sql)
                if key in statements or len(statements) < _MAX_STATEMENTS:
                    statements[key] = statements.get(key, 0) + 1


def _vendor_of(context: dict[str, Any]) -> str:
    connection = context.get("connection") if isinstance(context, dict) else None
    return str(getattr(connection, "vendor", "") or "")


def _add_wrapper(connection: BaseDatabaseWrapper) -> None:
    if count_query not in connection.execute_wrappers:
        # First in the list, so outermost (Django nests the wrappers in list order, the first one around the rest):
        # ``connection.execute_wrapper()`` blocks pop the last entry, which stays theirs even when the connection
        # opens (and this runs) inside such a block.
        connection.execute_wrappers.insert(0, count_query)


def _on_connection_created(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    _add_wrapper(connection)


def install() -> None:
    """Add the wrapper to this thread's open connections and, from now on, to every connection opened."""
    connection_created.connect(_on_connection_created, dispatch_uid=_DISPATCH_UID)
    for connection in connections.all(initialized_only=True):
        _add_wrapper(connection)


def uninstall() -> None:
    """Stop adding the wrapper, and take it off this thread's connections."""
    connection_created.disconnect(dispatch_uid=_DISPATCH_UID)
    for connection in connections.all(initialized_only=True):
        while count_query in connection.execute_wrappers:
            connection.execute_wrappers.remove(count_query)


def counting_wanted(config: Mapping[str, Any], middleware: Sequence[str]) -> bool:
    """Whether anything reports the figures: a middleware that logs or counts them, tracing, or a warning."""
    if not config["DB_QUERY_COUNTING"]:
        return False
    if config["DB_QUERY_WARNING"] is not None or config["SLOW_REQUEST_MS"] is not None:
        return True
    if any(is_kind(entry, base) for entry in middleware for base in REPORTING_MIDDLEWARE):
        return True
    # The request's span reports them too; read from the settings, so this producer knows no consumer.
    return bool(config["OTEL"]["ENABLED"] or config["XRAY"]["ENABLED"])


class RequestCounter:
    """Counts each request's queries between :meth:`begin` and :meth:`end`; warns once when it crosses a limit."""

    def __init__(self, query_warning: int | None, slow_request_ms: float | None, interval: float = 60.0) -> None:
        self.query_warning = query_warning
        self.slow_request_ms = slow_request_ms
        self.warns = query_warning is not None or slow_request_ms is not None
        self.limiter = WarningLimiter(interval)

    def begin(self) -> Token[QueryFigures | None]:
        """Start counting the request being served in this context, publishing its figures on the context."""
        return publish_query_figures(QueryStats(self.warns))

    def end(self, token: Token[QueryFigures | None], request: HttpRequest) -> None:
        """Stop counting; write the warning line if the request made too many queries or was too slow."""
        stats = current()
        unpublish_query_figures(token)
        if not self.warns or stats is None:
            return
        duration_ms = (time.perf_counter() - stats.started) * 1000.0
        reasons = []
        if self.query_warning is not None and stats.count > self.query_warning:
            reasons.append(REASON_QUERIES)
        if self.slow_request_ms is not None and duration_ms > self.slow_request_ms:
            reasons.append(REASON_DURATION)
        if not reasons:
            return
        method, route = normalize_method(request.method), route_of(request)
        suppressed = self.limiter.admit((method, route))
        if suppressed is None:
            return
        fields = {
            "request_id": getattr(request, "request_id", None),
            "method": method,
            "route": route,
            "db_queries": stats.count,
            "db_time_ms": stats.milliseconds,
            "duration_ms": round(duration_ms, 3),
            "db_query_warning": self.query_warning,
            "slow_request_ms": self.slow_request_ms,
        }
        write_warning(fields, reasons, repeated_shapes(stats.statements or {}), suppressed)


def request_counter() -> RequestCounter | None:
    """Set the wrapper up for this configuration (once, when the middleware is built); ``None`` when off."""
    config = get_config()
    if not counting_wanted(config, list(getattr(settings, "MIDDLEWARE", None) or [])):
        uninstall()
        return None
    install()
    return RequestCounter(config["DB_QUERY_WARNING"], config["SLOW_REQUEST_MS"], config["DB_QUERY_WARNING_INTERVAL"])
