"""System check for the place of ``AccessLogMiddleware``: above every middleware that can answer a request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import checks

ACCESS_LOG_MIDDLEWARE = "django_prodkit.middleware.AccessLogMiddleware"

# django-prodkit's own middleware above it never answers a request the access log should see: the request-id
# middleware only labels it, and the health answers are left out of the access log anyway.
_MAY_PRECEDE_ACCESS_LOG = frozenset(
    {
        "django_prodkit.middleware.RequestIDMiddleware",
        "django_prodkit.middleware.HealthCheckMiddleware",
        "django_prodkit.middleware.MetricsMiddleware",
        "django_prodkit.middleware.XRayMiddleware",
        "django_prodkit.middleware.TracingMiddleware",
    }
)


#: The ids of this concern's checks, with a one-line summary (the docs list them all).
CHECK_IDS: dict[str, str] = {
    "prodkit.W051": "AccessLogMiddleware is not right after RequestIDMiddleware.",
}


def check_access_log_position(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``AccessLogMiddleware`` below a middleware that answers (redirects, 304s, bad hosts) logs it wrongly."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if ACCESS_LOG_MIDDLEWARE not in middleware:
        return []
    above = [
        name for name in middleware[: middleware.index(ACCESS_LOG_MIDDLEWARE)] if name not in _MAY_PRECEDE_ACCESS_LOG
    ]
    if not above:
        return []
    return [
        checks.Warning(
            f"{ACCESS_LOG_MIDDLEWARE} comes after {above[0]}: what that middleware answers itself (an APPEND_SLASH "
            "or SSL redirect, a 304, a 400 for a bad Host) is logged with the wrong status or not at all.",
            hint=f"Move {ACCESS_LOG_MIDDLEWARE} right after RequestIDMiddleware; it still logs the user, which it "
            "reads after the response.",
            id="prodkit.W051",
        )
    ]


def register() -> None:
    """Register the check (called from :func:`django_prodkit.checks.register_all`)."""
    checks.register(check_access_log_position, "prodkit")
