"""System checks for the middleware stack as a whole: the middleware that logs runs inside ``RequestIDMiddleware``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core import checks

from django_prodkit.stack import index_of, installed_middleware

#: The ids of this concern's checks, with a one-line summary (the docs list them all).
CHECK_IDS: dict[str, str] = {
    "prodkit.W001": "A django-prodkit middleware runs outside RequestIDMiddleware.",
}

REQUEST_ID_MIDDLEWARE = "django_prodkit.middleware.RequestIDMiddleware"

#: Middleware whose log lines or metrics want the request id, so must sit below RequestIDMiddleware.
_NEEDS_REQUEST_ID = (
    "django_prodkit.middleware.AccessLogMiddleware",
    "django_prodkit.middleware.TracingMiddleware",
    "django_prodkit.middleware.XRayMiddleware",
)


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


def register() -> None:
    """Register the middleware-order check (called from :func:`django_prodkit.checks.register_all`)."""
    checks.register(check_middleware_order, "prodkit")
