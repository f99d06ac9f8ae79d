"""A project's own subclasses of our middleware, listed by their own dotted paths in MIDDLEWARE."""

from __future__ import annotations

from django_prodkit.middleware import AccessLogMiddleware, HealthCheckMiddleware, MetricsMiddleware, RequestIDMiddleware


class MyMetrics(MetricsMiddleware):
    """Counts like MetricsMiddleware (a project would add to it)."""


class MyHealth(HealthCheckMiddleware):
    """Answers health checks like HealthCheckMiddleware."""


class MyRequestID(RequestIDMiddleware):
    """Gives ids like RequestIDMiddleware."""


class MyAccessLog(AccessLogMiddleware):
    """Writes the access line like AccessLogMiddleware."""
