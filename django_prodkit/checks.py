"""System checks. Every id is listed in :data:`CHECK_IDS` and documented in ``docs/checks.md``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from django_prodkit import access_log_checks, conf, db_checks, health_checks, security_checks
from django_prodkit.cloudwatch import checks as cloudwatch_checks
from django_prodkit.metrics import checks as metrics_checks
from django_prodkit.stack import index_of, installed_middleware
from django_prodkit.tracing import checks as tracing_checks
from django_prodkit.tracing.otel import checks as otel_checks

#: Every check id this package can report, with a one-line summary (the docs list them all).
CHECK_IDS: dict[str, str] = {
    "prodkit.E001": "PRODKIT has a key that does not exist.",
    "prodkit.E002": "A PRODKIT value has the wrong type.",
    "prodkit.E003": "PRODKIT or a documented environment variable cannot be read.",
    "prodkit.E004": "REQUEST_ID_HEADER is not a valid HTTP header name.",
    "prodkit.W001": "A django-prodkit middleware runs outside RequestIDMiddleware.",
    "prodkit.E010": "A HEALTH_CHECKS entry cannot be imported or is not callable.",
    "prodkit.E011": "HEALTH_CHECK_DATABASES names a database alias that is not configured.",
    "prodkit.E012": "HEALTH_CHECK_CACHES names a cache alias that is not configured.",
    "prodkit.E013": "HEALTH_CHECK_TIMEOUT is not positive.",
    "prodkit.W010": "SESSION_COOKIE_AGE is longer than SESSION_MAX_AGE_WARNING (deploy).",
    "prodkit.W011": "SESSION_EXPIRE_AT_BROWSER_CLOSE is off (deploy).",
    "prodkit.W012": "SESSION_COOKIE_SAMESITE is 'None' without SESSION_COOKIE_SECURE (deploy).",
    "prodkit.W013": "CSRF_COOKIE_SAMESITE is 'None' without CSRF_COOKIE_SECURE (deploy).",
    "prodkit.W015": "A CSRF_TRUSTED_ORIGINS entry is plain http for a non-local host (deploy).",
    "prodkit.W018": "HealthCheckMiddleware is not first in MIDDLEWARE.",
    "prodkit.W019": "HealthCheckMiddleware has no health endpoint in the URLconf to serve.",
    "prodkit.E050": "HEALTH_CHECK_REUSE_SECONDS is negative.",
    "prodkit.W050": "HEALTH_CHECK_SHOW_ERRORS is on with DEBUG off (deploy).",
    "prodkit.W051": "AccessLogMiddleware is not right after RequestIDMiddleware.",
    "prodkit.E020": "METRICS_BUCKETS is not a strictly increasing list of positive numbers.",
    "prodkit.E021": "METRICS_TOP_ENDPOINTS is less than 1.",
    "prodkit.E022": "PROMETHEUS_MULTIPROC_DIR is not a writable directory.",
    "prodkit.W020": "The metrics endpoint is routed but no token is configured (deploy).",
    "prodkit.W021": "The metrics endpoint is routed but MetricsMiddleware is not installed.",
    "prodkit.W024": "METRICS_BUCKETS has more than 60 bounds.",
}
#: The id tables of each concern; :data:`CHECK_IDS` is their union, and an id defined twice is an error.
CHECK_ID_TABLES: tuple[dict[str, str], ...] = (
    dict(CHECK_IDS),
    cloudwatch_checks.CHECK_IDS,
    tracing_checks.CHECK_IDS,
    db_checks.CHECK_IDS,
    otel_checks.CHECK_IDS,
)
for _table in CHECK_ID_TABLES[1:]:
    CHECK_IDS.update(_table)

_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")

REQUEST_ID_MIDDLEWARE = "django_prodkit.middleware.RequestIDMiddleware"

#: Middleware whose log lines or metrics want the request id, so must sit below RequestIDMiddleware.
_NEEDS_REQUEST_ID = (
    "django_prodkit.middleware.AccessLogMiddleware",
    "django_prodkit.middleware.TracingMiddleware",
    "django_prodkit.middleware.XRayMiddleware",
)


def _hint_for(key: str, close: str | None) -> str:
    if close:
        return f"Did you mean {close!r}? See the settings reference for every key."
    return "Remove it; the settings reference lists every key."


def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Unknown keys, wrong types and unreadable environment variables in the configuration."""
    try:
        given = conf.user_settings()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint="Set PRODKIT to a dict.", id="prodkit.E003")]
    messages: list[checks.CheckMessage] = [
        checks.Error(
            f"{conf.SETTING_NAME}[{key!r}] is not a django-prodkit setting.",
            hint=_hint_for(key, close),
            id="prodkit.E001",
        )
        for key, close in conf.unknown_keys(given)
    ]
    messages.extend(
        checks.Error(text, hint="See the settings reference for the accepted type.", id="prodkit.E002")
        for text in conf.type_errors(given)
    )
    if messages:
        return messages
    try:
        conf.reset_config()
        config = conf.get_config()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint="Fix or unset the environment variable.", id="prodkit.E003")]
    if not _HEADER_NAME.fullmatch(config["REQUEST_ID_HEADER"]):
        messages.append(
            checks.Error(
                f"PRODKIT['REQUEST_ID_HEADER'] = {config['REQUEST_ID_HEADER']!r} is not a valid header name.",
                hint="Use letters, digits and hyphens, e.g. 'X-Request-ID'.",
                id="prodkit.E004",
            )
        )
    return messages


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


def register_all() -> None:
    """Register every check with Django (called from ``AppConfig.ready``)."""
    checks.register(check_settings, "prodkit")
    checks.register(check_middleware_order, "prodkit")
    checks.register(cloudwatch_checks.check_cloudwatch, "prodkit")
    checks.register(tracing_checks.check_tracing, "prodkit")
    checks.register(otel_checks.check_otel, "prodkit")
    health_checks.register()
    access_log_checks.register()
    security_checks.register()
    metrics_checks.register()
    db_checks.register()
