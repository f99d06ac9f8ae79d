"""System checks for the middleware stack as a whole: each of ours listed once, the logging ones inside the id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core import checks

from django_prodkit.stack import index_of, installed_middleware, is_kind

#: The ids of this concern's checks, with a one-line summary (the docs list them all).
CHECK_IDS: dict[str, str] = {
    "prodkit.W001": "A django-prodkit middleware runs outside RequestIDMiddleware.",
    "prodkit.E160": "A django-prodkit middleware (or a subclass of it) is listed more than once in MIDDLEWARE.",
    "prodkit.E161": "XRayMiddleware, TracingMiddleware's old name, is listed beside TracingMiddleware.",
}

REQUEST_ID_MIDDLEWARE = "django_prodkit.middleware.RequestIDMiddleware"
TRACING_MIDDLEWARE = "django_prodkit.middleware.TracingMiddleware"
XRAY_ALIAS = "django_prodkit.middleware.XRayMiddleware"

#: Middleware whose log lines or metrics want the request id, so must sit below RequestIDMiddleware.
_NEEDS_REQUEST_ID = (
    "django_prodkit.middleware.AccessLogMiddleware",
    TRACING_MIDDLEWARE,
    XRAY_ALIAS,
)

#: Each of our middleware, with what a request passing it twice does wrong.
_TWICE: dict[str, str] = {
    REQUEST_ID_MIDDLEWARE: "a request without an incoming id gets two: one in the response header, another in its logs",
    "django_prodkit.middleware.AccessLogMiddleware": "every request writes two access lines",
    "django_prodkit.middleware.HealthCheckMiddleware": "the inner copy answers nothing and costs each request a lookup",
    "django_prodkit.middleware.MetricsMiddleware": "every request is counted twice",
    TRACING_MIDDLEWARE: "every request is traced twice",
}


def check_middleware_order(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Middleware that logs must run inside ``RequestIDMiddleware`` so its lines carry the id."""
    middleware = installed_middleware()
    position = index_of(REQUEST_ID_MIDDLEWARE, middleware)
    if position is None:
        return []
    return [
        checks.Warning(
            f"{name} is listed before {REQUEST_ID_MIDDLEWARE}, so its log lines have no request id.",
            hint=f"Move {REQUEST_ID_MIDDLEWARE} above it in MIDDLEWARE (first is best).",
            id="prodkit.W001",
        )
        for name in _NEEDS_REQUEST_ID
        if (found := index_of(name, middleware)) is not None and found < position
    ]


def check_middleware_listed_once(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Each of our middleware, subclasses and the ``XRayMiddleware`` alias included, may be listed once."""
    middleware = installed_middleware()
    messages: list[checks.CheckMessage] = []
    for base, consequence in _TWICE.items():
        entries = [entry for entry in middleware if is_kind(entry, base)]
        if len(entries) < 2:
            continue
        if XRAY_ALIAS in entries and any(entry != XRAY_ALIAS for entry in entries):
            others = ", ".join(entry for entry in entries if entry != XRAY_ALIAS)
            messages.append(
                checks.Error(
                    f"MIDDLEWARE lists {XRAY_ALIAS} and {others}: XRayMiddleware is TracingMiddleware's old name, "
                    f"so {consequence}.",
                    hint=f"Keep only {TRACING_MIDDLEWARE}, after MetricsMiddleware (see the Overview in the docs).",
                    id="prodkit.E161",
                )
            )
            continue
        messages.append(
            checks.Error(
                f"MIDDLEWARE lists {base.rsplit('.', 1)[-1]} {len(entries)} times ({', '.join(entries)}), "
                f"so {consequence}.",
                hint="Keep one entry. The docs' settings snippets change the quickstart's MIDDLEWARE "
                "(MIDDLEWARE.insert(...)); pasting a whole MIDDLEWARE list on top of it repeats ours.",
                id="prodkit.E160",
            )
        )
    return messages


def register() -> None:
    """Register the middleware-stack checks (called from :func:`django_prodkit.checks.register_all`)."""
    checks.register(check_middleware_order, "prodkit")
    checks.register(check_middleware_listed_once, "prodkit")
