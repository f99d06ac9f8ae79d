"""System checks for the per-request database figures: registered by ``django_prodkit.checks.register_all``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from django_prodkit.conf import get_config
from django_prodkit.stack import index_of

#: The ids these checks report, with a one-line summary (the docs list them all).
CHECK_IDS: dict[str, str] = {
    "prodkit.E080": "DB_QUERY_WARNING is less than 1.",
    "prodkit.E081": "SLOW_REQUEST_MS is not a positive, finite number.",
    "prodkit.E165": "DB_QUERY_WARNING_INTERVAL is negative or not finite.",
    "prodkit.W080": "A database warning threshold is set but RequestIDMiddleware, which counts, is not installed.",
}

REQUEST_ID_MIDDLEWARE = "django_prodkit.middleware.RequestIDMiddleware"


def check_database_figures(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The warning thresholds are valid, and the middleware that counts is there to apply them."""
    try:
        config = get_config()
    except ImproperlyConfigured:
        return []  # prodkit.E002/E003 report it.
    messages: list[checks.CheckMessage] = []
    query_warning = config["DB_QUERY_WARNING"]
    slow_ms = config["SLOW_REQUEST_MS"]
    if query_warning is not None and query_warning < 1:
        messages.append(
            checks.Error(
                f"PRODKIT['DB_QUERY_WARNING'] = {query_warning!r} would warn about every request.",
                hint="Set it to the number of queries above which a request is worth a warning (say 50), or None.",
                id="prodkit.E080",
            )
        )
    if slow_ms is not None and not (math.isfinite(slow_ms) and slow_ms > 0):
        messages.append(
            checks.Error(
                f"PRODKIT['SLOW_REQUEST_MS'] = {slow_ms!r} is not a positive number of milliseconds.",
                hint="Set it to the duration above which a request is worth a warning (say 1000), or None.",
                id="prodkit.E081",
            )
        )
    interval = config["DB_QUERY_WARNING_INTERVAL"]
    if not (math.isfinite(interval) and interval >= 0):
        messages.append(
            checks.Error(
                f"PRODKIT['DB_QUERY_WARNING_INTERVAL'] = {interval!r} is not a number of seconds.",
                hint="Set it to how often one route may write the warning line (say 60), or 0 for every request.",
                id="prodkit.E165",
            )
        )
    if (query_warning is not None or slow_ms is not None) and index_of(REQUEST_ID_MIDDLEWARE) is None:
        messages.append(
            checks.Warning(
                "DB_QUERY_WARNING or SLOW_REQUEST_MS is set but RequestIDMiddleware is not in MIDDLEWARE; "
                "it is what counts each request's queries, so no warning is ever written.",
                hint=f"Add {REQUEST_ID_MIDDLEWARE!r} first in MIDDLEWARE.",
                id="prodkit.W080",
            )
        )
    return messages


def register() -> None:
    """Register the database checks (called from ``django_prodkit.checks.register_all``)."""
    checks.register(check_database_figures, "prodkit")
