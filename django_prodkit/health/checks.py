"""System checks for the health-check configuration and the placement of ``HealthCheckMiddleware``."""

from __future__ import annotations

import importlib.util
import math
import sys
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import storages
from django.db import connections
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.utils.module_loading import import_string

from django_prodkit import conf
from django_prodkit.health.dependencies import broker_url, endpoint_name
from django_prodkit.health.endpoints import HEALTH_URL_NAMES
from django_prodkit.stack import index_of, installed_middleware, is_kind

HEALTH_MIDDLEWARE = "django_prodkit.middleware.HealthCheckMiddleware"
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


#: The ids of this concern's checks, with a one-line summary (the docs list them all).
CHECK_IDS: dict[str, str] = {
    "prodkit.E010": "A HEALTH_CHECKS entry cannot be imported or is not callable.",
    "prodkit.E011": "HEALTH_CHECK_DATABASES names a database alias that is not configured.",
    "prodkit.E012": "HEALTH_CHECK_CACHES names a cache alias that is not configured.",
    "prodkit.E013": "HEALTH_CHECK_TIMEOUT is not positive.",
    "prodkit.E166": "HEALTH_CHECK_STORAGES names a storage alias that is not configured.",
    "prodkit.E167": "A HEALTH_CHECK_REDIS_URLS entry is not a redis://, rediss:// or unix:// URL.",
    "prodkit.E168": "HEALTH_CHECK_REDIS_URLS is set but redis-py is not installed.",
    "prodkit.E169": "A broker is to be probed but kombu is not installed.",
    "prodkit.E050": "HEALTH_CHECK_REUSE_SECONDS is negative.",
    "prodkit.W018": "HealthCheckMiddleware is not first in MIDDLEWARE.",
    "prodkit.W019": "HealthCheckMiddleware has no health endpoint in the URLconf to serve.",
    "prodkit.W050": "HEALTH_CHECK_SHOW_ERRORS is on with DEBUG off (deploy).",
}


def _installed(module: str) -> bool:
    # kombu replaces its module object on import (one without __spec__, which find_spec refuses): ask sys.modules first.
    if module in sys.modules:
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def _config() -> Mapping[str, Any] | None:
    try:
        return conf.get_config()
    except ImproperlyConfigured:
        return None  # prodkit.E003 reports an unreadable configuration


def check_health_config(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Custom checks that do not import, unknown aliases, a timeout that is not positive, a negative reuse time."""
    config = _config()
    if config is None:
        return []
    messages: list[checks.CheckMessage] = []
    for path in config["HEALTH_CHECKS"]:
        try:
            func = import_string(path)
        except ImportError as exc:
            problem = f"cannot be imported ({exc})"
        else:
            problem = "" if callable(func) else "is not callable"
        if problem:
            messages.append(
                checks.Error(
                    f"PRODKIT['HEALTH_CHECKS'] entry {path!r} {problem}.",
                    hint="Give the dotted path of a function that takes no arguments and raises on failure.",
                    id="prodkit.E010",
                )
            )
    for key, known, check_id in (
        ("HEALTH_CHECK_DATABASES", set(connections), "prodkit.E011"),
        ("HEALTH_CHECK_CACHES", set(caches.settings), "prodkit.E012"),
        ("HEALTH_CHECK_STORAGES", set(storages.backends), "prodkit.E166"),
    ):
        messages.extend(
            checks.Error(
                f"PRODKIT[{key!r}] names the alias {alias!r}, which is not configured.",
                hint=f"Use one of {', '.join(sorted(known))}, or None for all of them.",
                id=check_id,
            )
            for alias in config[key] or []
            if alias not in known
        )
    messages.extend(
        checks.Error(
            f"PRODKIT['HEALTH_CHECK_REDIS_URLS'] has {endpoint_name(url)!r}, which is not a Redis URL.",
            hint="Write redis://[:password@]host:6379/0 (rediss:// for TLS, unix:///path/to/socket for a socket).",
            id="prodkit.E167",
        )
        for url in config["HEALTH_CHECK_REDIS_URLS"]
        if urllib.parse.urlsplit(url).scheme not in _REDIS_SCHEMES
    )
    for wanted, module, what, check_id in (
        (bool(config["HEALTH_CHECK_REDIS_URLS"]), "redis", "HEALTH_CHECK_REDIS_URLS is set", "prodkit.E168"),
        (broker_url() is not None, "kombu", "A Celery broker is to be probed", "prodkit.E169"),
    ):
        if wanted and not _installed(module):
            messages.append(
                checks.Error(
                    f"{what}, but {module} is not installed, so the readiness probe would always fail.",
                    hint=f"pip install {'redis' if module == 'redis' else 'celery'}, or remove the setting.",
                    id=check_id,
                )
            )
    timeout = config["HEALTH_CHECK_TIMEOUT"]
    if not math.isfinite(timeout) or timeout <= 0:
        messages.append(
            checks.Error(
                f"PRODKIT['HEALTH_CHECK_TIMEOUT'] is {timeout!r}; it must be a positive number of seconds.",
                hint="Use a few seconds at most, below your load balancer's health-check timeout.",
                id="prodkit.E013",
            )
        )
    reuse = config["HEALTH_CHECK_REUSE_SECONDS"]
    if not math.isfinite(reuse) or reuse < 0:
        messages.append(
            checks.Error(
                f"PRODKIT['HEALTH_CHECK_REUSE_SECONDS'] is {reuse!r}; it must be zero or a positive number of seconds.",
                hint="Keep the default of 1 s, or use 0 to run the checks for every probe that finds none running.",
                id="prodkit.E050",
            )
        )
    return messages


def _unroutable_paths(paths: list[str]) -> list[str]:
    if not paths:
        missing = []
        for name in HEALTH_URL_NAMES:
            try:
                reverse(name)
            except NoReverseMatch:
                missing.append(name)
        return missing
    unroutable = []
    for path in paths:
        try:
            resolve(path)
        except Resolver404:
            unroutable.append(path)
    return unroutable


# django-prodkit's own middleware never validates the host, so it may sit above HealthCheckMiddleware
# (the access log leaves the health endpoints out);
# RequestIDMiddleware should, so health responses carry an X-Request-ID too.
_MAY_PRECEDE_HEALTH = frozenset(
    {
        "django_prodkit.middleware.RequestIDMiddleware",
        "django_prodkit.middleware.AccessLogMiddleware",
        "django_prodkit.middleware.MetricsMiddleware",
        "django_prodkit.middleware.TracingMiddleware",
        "django_prodkit.middleware.XRayMiddleware",
    }
)


def check_health_middleware(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``HealthCheckMiddleware`` must come before Django's middleware and have health endpoints to serve."""
    middleware = installed_middleware()
    config = _config()
    position = index_of(HEALTH_MIDDLEWARE, middleware)
    if position is None or config is None:
        return []
    messages: list[checks.CheckMessage] = []
    above = middleware[:position]
    blocking = [name for name in above if not any(is_kind(name, ours) for ours in _MAY_PRECEDE_HEALTH)]
    if blocking:
        messages.append(
            checks.Warning(
                f"{HEALTH_MIDDLEWARE} comes after {blocking[0]}, which runs before it and can reject "
                "or redirect a load balancer's health probe.",
                hint=f"Move {HEALTH_MIDDLEWARE} above Django's middleware, after RequestIDMiddleware and "
                "AccessLogMiddleware.",
                id="prodkit.W018",
            )
        )
    missing = _unroutable_paths(list(config["HEALTH_CHECK_PATHS"]))
    if missing:
        messages.append(
            checks.Warning(
                f"{HEALTH_MIDDLEWARE} has nothing to serve for {', '.join(map(repr, missing))}: not in the URLconf.",
                hint='Add path("api/v1/", include("django_prodkit.urls")) to your URLconf, or fix HEALTH_CHECK_PATHS.',
                id="prodkit.W019",
            )
        )
    return messages


def check_health_errors_hidden(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Deployment: readiness failure messages shown to anyone while ``DEBUG`` is off."""
    config = _config()
    if config is None or settings.DEBUG or not config["HEALTH_CHECK_SHOW_ERRORS"]:
        return []
    return [
        checks.Warning(
            "PRODKIT['HEALTH_CHECK_SHOW_ERRORS'] is on: the readiness endpoint, which answers any client before "
            "host validation, shows each failing check's exception text (file paths, host names).",
            hint="Remove it (the 503 still names the failing checks and the log has the messages).",
            id="prodkit.W050",
        )
    ]


def register() -> None:
    """Register the health checks (called from :func:`django_prodkit.checks.register_all`)."""
    checks.register(check_health_config, "prodkit")
    checks.register(check_health_errors_hidden, "prodkit", checks.Tags.security, deploy=True)
    checks.register(check_health_middleware, "prodkit", checks.Tags.urls)
