"""System checks for the metrics: registered by ``django_prodkit.checks.register_all``."""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, reverse

from django_prodkit.conf import get_config
from django_prodkit.metrics.multiproc import MULTIPROC_ENV, multiproc_dir
from django_prodkit.stack import index_of

METRICS_VIEW = "prodkit:metrics"
METRICS_MIDDLEWARE = "django_prodkit.middleware.MetricsMiddleware"
#: More bounds than this multiply the series per endpoint without a useful gain in accuracy.
MAX_BUCKETS = 60


#: The ids of this concern's checks, with a one-line summary (the docs list them all).
CHECK_IDS: dict[str, str] = {
    "prodkit.E020": "METRICS_BUCKETS is not a strictly increasing list of positive numbers.",
    "prodkit.E021": "METRICS_TOP_ENDPOINTS is less than 1.",
    "prodkit.E022": "PROMETHEUS_MULTIPROC_DIR is not a writable directory.",
    "prodkit.W020": "The metrics endpoint is routed but no token is configured (deploy).",
    "prodkit.W021": "The metrics endpoint is routed but MetricsMiddleware is not installed.",
    "prodkit.W024": "METRICS_BUCKETS has more than 60 bounds.",
}


def _routed() -> str | None:
    """The path of the metrics endpoint, or ``None`` when the URLconf does not include it."""
    try:
        return reverse(METRICS_VIEW)
    except (NoReverseMatch, ImproperlyConfigured, ImportError):
        return None


def _config() -> Mapping[str, Any] | None:
    try:
        return get_config()
    except ImproperlyConfigured:
        return None  # prodkit.E002/E003 report it.


def check_metrics_token(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Deployment: the metrics endpoint is routed but no token is configured."""
    config = _config()
    path = _routed()
    if config is None or path is None or any(config["METRICS_TOKENS"]):
        return []
    return [
        checks.Warning(
            f"The metrics endpoint {path} is routed but PRODKIT['METRICS_TOKENS'] is empty, so only staff "
            "users logged in to this site can read it; a Prometheus scraper cannot.",
            hint="Set PRODKIT_METRICS_TOKENS (comma-separated) or PRODKIT['METRICS_TOKENS'] to long random tokens.",
            id="prodkit.W020",
        )
    ]


def check_metrics_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Buckets, the top-endpoints count, the multiprocess directory, and the middleware being installed."""
    config = _config()
    if config is None:
        return []
    messages: list[checks.CheckMessage] = []
    buckets = [float(b) for b in config["METRICS_BUCKETS"]]
    if any(not math.isfinite(b) or b <= 0 for b in buckets) or any(a >= b for a, b in itertools.pairwise(buckets)):
        messages.append(
            checks.Error(
                f"PRODKIT['METRICS_BUCKETS'] = {buckets!r:.120} is not a strictly increasing list of positive seconds.",
                hint="Leave it empty for the default buckets, which keep percentiles within 20 %.",
                id="prodkit.E020",
            )
        )
    elif len(buckets) > MAX_BUCKETS:
        # Imported here: the store imports prometheus_client, which must wait for PROMETHEUS_MULTIPROC_DIR.
        from django_prodkit.metrics.store import default_buckets

        messages.append(
            checks.Warning(
                f"PRODKIT['METRICS_BUCKETS'] has {len(buckets)} bounds: every endpoint costs {len(buckets) + 3} "
                "Prometheus series.",
                hint=f"Use at most {MAX_BUCKETS}; the default {len(default_buckets())} keep percentiles within 20 %.",
                id="prodkit.W024",
            )
        )
    if config["METRICS_TOP_ENDPOINTS"] < 1:
        messages.append(
            checks.Error(
                "PRODKIT['METRICS_TOP_ENDPOINTS'] must be at least 1.",
                hint="The default is 10.",
                id="prodkit.E021",
            )
        )
    messages.extend(_multiprocess_messages())
    if index_of(METRICS_MIDDLEWARE) is None and _routed() is not None:
        messages.append(
            checks.Warning(
                "The metrics endpoint is routed but MetricsMiddleware is not in MIDDLEWARE, so it reports nothing.",
                hint=f"Add {METRICS_MIDDLEWARE!r} to MIDDLEWARE, after RequestIDMiddleware and HealthCheckMiddleware.",
                id="prodkit.W021",
            )
        )
    return messages


def _multiprocess_messages() -> list[checks.CheckMessage]:
    directory = multiproc_dir()
    if directory is None:
        return []
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
        return [
            checks.Error(
                f"{MULTIPROC_ENV}={directory!r} is not a writable directory.",
                hint="Create it before the server starts (django_prodkit.gunicorn's on_starting hook does).",
                id="prodkit.E022",
            )
        ]
    return []


def register() -> None:
    """Register the metrics checks (called from ``django_prodkit.checks.register_all``)."""
    checks.register(check_metrics_settings, "prodkit")
    checks.register(check_metrics_token, "prodkit", checks.Tags.security, deploy=True)
