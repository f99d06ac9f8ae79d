"""What ``MetricsMiddleware`` does after each response: bound the labels, count, tell the observers."""

from __future__ import annotations

import logging

from django.http import HttpRequest

from django_prodkit.conf import get_config
from django_prodkit.context.figures import query_figures
from django_prodkit.context.http import normalize_method, route_of
from django_prodkit.metrics import observers
from django_prodkit.metrics.store import MetricStore, get_store
from django_prodkit.metrics.workers import warn_if_per_worker
from django_prodkit.stack import index_of, installed_middleware

logger = logging.getLogger("django_prodkit.metrics")

METRICS_MIDDLEWARE = "django_prodkit.middleware.MetricsMiddleware"


class RequestRecorder:
    """Counts requests into the store, skipping the excluded views (the metrics endpoint by default)."""

    def __init__(self, store: MetricStore | None = None) -> None:
        self.store = store if store is not None else get_store()
        self.exclude_views = frozenset(get_config()["METRICS_EXCLUDE_VIEWS"])
        self._failed: set[int] = set()
        # Checked at the first request, when the server's objects are on the stack (see ``workers``).
        self._check_scope = not self.store.multiprocess

    def record(self, request: HttpRequest, status: int, seconds: float) -> None:
        """Count one finished request."""
        if self._check_scope:
            self._check_scope = False
            warn_if_per_worker()
        match = request.resolver_match
        if match is not None and match.view_name in self.exclude_views:
            return
        method = normalize_method(request.method)
        route = route_of(request)
        self.store.observe(method, route, status, seconds)
        queries = query_figures()
        if queries is not None:
            self.store.observe_queries(method, route, queries.count)
        # The list itself, not a copy: the usual case is empty and this is the hot path.
        if observers._observers:
            self._notify(method, route, status, seconds * 1000.0)

    def _notify(self, method: str, route: str, status: int, duration_ms: float) -> None:
        for observer in tuple(observers._observers):
            try:
                observer(method, route, status, duration_ms)
            except Exception:
                # Once per observer with the traceback; a broken observer must not flood the logs.
                if id(observer) in self._failed:
                    logger.debug("metrics observer %r failed", observer, exc_info=True)
                else:
                    self._failed.add(id(observer))
                    logger.exception("metrics observer %r failed; later failures are logged at DEBUG", observer)


def recorder_for(middleware_path: str) -> RequestRecorder | None:
    """A recorder for the requests ``middleware_path`` answers itself, if MetricsMiddleware sits below it.

    ``HealthCheckMiddleware`` answers health checks above the rest of the stack, so MetricsMiddleware never
    sees them; it counts them with this instead (and not when MetricsMiddleware is above it, or absent).
    Subclasses of either count as them (see ``django_prodkit.stack``).
    """
    middleware = installed_middleware()
    metrics, answering = index_of(METRICS_MIDDLEWARE, middleware), index_of(middleware_path, middleware)
    if metrics is None or answering is None or metrics < answering:
        return None
    return RequestRecorder()
