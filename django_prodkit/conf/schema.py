"""Every ``PRODKIT`` key: its default and the type it accepts, and the checks of a given dict against them."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SETTING_NAME = "PRODKIT"

#: Every key of ``PRODKIT`` with its default. Nested dicts are merged key by key.
DEFAULTS: dict[str, Any] = {
    "SERVICE_NAME": "django",
    "REQUEST_ID_HEADER": "X-Request-ID",
    "REQUEST_ID_TRUST_INCOMING": True,
    "REQUEST_ID_EXPOSE_HEADER": True,
    "ACCESS_LOG_LOGGER": "django_prodkit.access",
    "ACCESS_LOG_EXCLUDE_PATHS": [],
    "ACCESS_LOG_EXCLUDE_VIEWS": ["prodkit:healthcheck", "prodkit:readiness", "prodkit:metrics"],
    "METRICS_TOKENS": [],
    "METRICS_TOP_ENDPOINTS": 10,
    "METRICS_EXCLUDE_VIEWS": ["prodkit:metrics"],
    "METRICS_BUCKETS": [],
    "METRICS_INSTANCE": "",
    "SERVICE_VERSION": "",
    "HEALTH_CHECK_TIMEOUT": 1.5,
    "HEALTH_CHECK_DATABASES": None,
    "HEALTH_CHECK_CACHES": None,
    "HEALTH_CHECKS": [],
    "HEALTH_CHECK_PATHS": [],
    "HEALTH_CHECK_SHOW_ERRORS": False,
    "HEALTH_CHECK_REUSE_SECONDS": 1.0,
    "SESSION_MAX_AGE_WARNING": 43200,
    "CELERY_INTEGRATION": True,
    "DJANGO_TASKS_INTEGRATION": True,
    "DB_QUERY_COUNTING": True,
    "DB_QUERY_WARNING": None,
    "SLOW_REQUEST_MS": None,
    # Issue 27: the warning line once per route per interval; readiness probes of what a site depends on.
    "DB_QUERY_WARNING_INTERVAL": 60.0,
    "HEALTH_CHECK_REDIS_URLS": [],
    "HEALTH_CHECK_BROKER_URL": None,
    "HEALTH_CHECK_STORAGES": None,
    # Service level objectives (docs/objectives.md): what `manage.py prodkit_monitoring` turns into alerts.
    "OBJECTIVES": [],
    "OBJECTIVES_WINDOW_DAYS": 28,
    "OBJECTIVES_MIN_REQUESTS": 100,
    "OBJECTIVES_SELECTOR": "",
    "OBJECTIVES_RUNBOOK_URL": "https://django-prodkit.readthedocs.io/en/latest/objectives.html",
    "XRAY": {
        "ENABLED": False,
        "SERVICE_NAME": None,
        "SAMPLING": True,
        "CENTRALIZED_SAMPLING": True,
        "SAMPLING_RULES": None,
        "CONTEXT_MISSING": "IGNORE_ERROR",
        "PATCH_MODULES": [],
        "RECORD_DB_QUERIES": False,
        "PLUGINS": [],
        "TRUST_INCOMING_SAMPLING": True,
    },
    "OTEL": {
        "ENABLED": False,
        "SERVICE_NAME": None,
        "ENDPOINT": None,
        "TRUST_INCOMING_SAMPLING": False,
        "AWS_SIGV4": False,
        "AWS_REGION": None,
        # Issue 22: become the process's global tracer provider (unless the application set one), and the
        # seconds a process's exit may spend sending the spans still queued.
        "GLOBAL_PROVIDER": True,
        "SHUTDOWN_TIMEOUT": 2.0,
    },
    "PROPAGATE_OUTBOUND": [],
    # Issue 22: the hosts whose calls carry X-Request-ID and the trace headers (ALLOWED_HOSTS' patterns).
    "PROPAGATE_OUTBOUND_HOSTS": ["*"],
    "CLOUDWATCH": {
        "ENABLED": False,
        "MODE": "emf",
        "NAMESPACE": "Django",
        "SERVICE_NAME": None,
        "FLUSH_INTERVAL": 60,
        "DIMENSIONS": None,
        "BUFFER_SIZE": 10000,
        "LOGGER": None,
        "REGION": None,
        "ENDPOINT_URL": None,
        "API_TIMEOUT": 5.0,
    },
    # The metrics over OTLP/HTTP (django_prodkit.metrics.otlp); None defers to the standard OTEL_* variable.
    "OTLP_METRICS": {
        "ENABLED": False,
        "ENDPOINT": None,
        "INTERVAL": None,
        "TEMPORALITY": None,
        "AWS_SIGV4": False,
        "AWS_REGION": None,
        "BUFFER_SIZE": 10,
    },
}


@dataclass(frozen=True)
class ListOf:
    """A list (or tuple) whose items all have one type."""

    item: type


#: The accepted type(s) for each key; a nested dict maps to its own schema.
SCHEMA: dict[str, Any] = {
    "SERVICE_NAME": str,
    "REQUEST_ID_HEADER": str,
    "REQUEST_ID_TRUST_INCOMING": bool,
    "REQUEST_ID_EXPOSE_HEADER": bool,
    "ACCESS_LOG_LOGGER": str,
    "ACCESS_LOG_EXCLUDE_PATHS": ListOf(str),
    "ACCESS_LOG_EXCLUDE_VIEWS": ListOf(str),
    "METRICS_TOKENS": ListOf(str),
    "METRICS_TOP_ENDPOINTS": int,
    "METRICS_EXCLUDE_VIEWS": ListOf(str),
    "METRICS_BUCKETS": ListOf(float),
    "METRICS_INSTANCE": str,
    "SERVICE_VERSION": str,
    "HEALTH_CHECK_TIMEOUT": float,
    "HEALTH_CHECK_DATABASES": (ListOf(str), type(None)),
    "HEALTH_CHECK_CACHES": (ListOf(str), type(None)),
    "HEALTH_CHECKS": ListOf(str),
    "HEALTH_CHECK_PATHS": ListOf(str),
    "HEALTH_CHECK_SHOW_ERRORS": bool,
    "HEALTH_CHECK_REUSE_SECONDS": float,
    "SESSION_MAX_AGE_WARNING": int,
    "CELERY_INTEGRATION": bool,
    "DJANGO_TASKS_INTEGRATION": bool,
    "DB_QUERY_COUNTING": bool,
    "DB_QUERY_WARNING": (int, type(None)),
    "SLOW_REQUEST_MS": (float, type(None)),
    "DB_QUERY_WARNING_INTERVAL": float,
    "HEALTH_CHECK_REDIS_URLS": ListOf(str),
    "HEALTH_CHECK_BROKER_URL": (str, type(None)),
    "HEALTH_CHECK_STORAGES": (ListOf(str), type(None)),
    "OBJECTIVES": ListOf(dict),
    "OBJECTIVES_WINDOW_DAYS": int,
    "OBJECTIVES_MIN_REQUESTS": int,
    "OBJECTIVES_SELECTOR": str,
    "OBJECTIVES_RUNBOOK_URL": str,
    "XRAY": {
        "ENABLED": bool,
        "SERVICE_NAME": (str, type(None)),
        "SAMPLING": bool,
        "CENTRALIZED_SAMPLING": bool,
        "SAMPLING_RULES": (str, dict, type(None)),
        "CONTEXT_MISSING": str,
        "PATCH_MODULES": ListOf(str),
        "RECORD_DB_QUERIES": bool,
        "PLUGINS": ListOf(str),
        "TRUST_INCOMING_SAMPLING": bool,
    },
    "OTEL": {
        "ENABLED": bool,
        "SERVICE_NAME": (str, type(None)),
        "ENDPOINT": (str, type(None)),
        "TRUST_INCOMING_SAMPLING": bool,
        "AWS_SIGV4": bool,
        "AWS_REGION": (str, type(None)),
        "GLOBAL_PROVIDER": bool,
        "SHUTDOWN_TIMEOUT": float,
    },
    "PROPAGATE_OUTBOUND": ListOf(str),
    "PROPAGATE_OUTBOUND_HOSTS": ListOf(str),
    "CLOUDWATCH": {
        "ENABLED": bool,
        "MODE": str,
        "NAMESPACE": str,
        "SERVICE_NAME": (str, type(None)),
        "FLUSH_INTERVAL": float,
        "DIMENSIONS": (dict, type(None)),
        "BUFFER_SIZE": int,
        "LOGGER": (str, type(None)),
        "REGION": (str, type(None)),
        "ENDPOINT_URL": (str, type(None)),
        "API_TIMEOUT": float,
    },
    "OTLP_METRICS": {
        "ENABLED": bool,
        "ENDPOINT": (str, type(None)),
        "INTERVAL": (float, type(None)),
        "TEMPORALITY": (str, type(None)),
        "AWS_SIGV4": bool,
        "AWS_REGION": (str, type(None)),
        "BUFFER_SIZE": int,
    },
}


def _type_name(spec: Any) -> str:
    if isinstance(spec, ListOf):
        return f"a list of {spec.item.__name__}"
    if isinstance(spec, tuple):
        return " or ".join("None" if t is type(None) else _type_name(t) for t in spec)
    if isinstance(spec, dict):
        return "a dict"
    return str(spec.__name__)


def _matches(value: Any, spec: Any) -> bool:
    if isinstance(spec, ListOf):
        return isinstance(value, (list, tuple)) and all(_matches(v, spec.item) for v in value)
    if isinstance(spec, dict):
        return isinstance(value, Mapping)
    if spec is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if spec is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(spec, tuple):
        return any(_matches(value, s) for s in spec)
    return isinstance(value, spec)


def unknown_keys(user: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """Return ``(dotted key, closest valid key or None)`` for every key not in the defaults."""
    found: list[tuple[str, str | None]] = []

    def walk(given: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str) -> None:
        for key, value in given.items():
            if key not in defaults:
                close = difflib.get_close_matches(str(key), list(defaults), n=1)
                found.append((prefix + str(key), prefix + close[0] if close else None))
            elif isinstance(defaults[key], dict) and isinstance(value, Mapping):
                walk(value, defaults[key], f"{prefix}{key}.")

    walk(user, DEFAULTS, "")
    return found


#: Keys whose values are credentials (or URLs that may carry them): a message names their type, never their value.
SECRET_KEYS = frozenset(
    {"METRICS_TOKENS", "HEALTH_CHECK_REDIS_URLS", "HEALTH_CHECK_BROKER_URL", "OTEL.ENDPOINT", "CLOUDWATCH.ENDPOINT_URL"}
)


def _shown(key: str, value: Any) -> str:
    if key in SECRET_KEYS:
        return f"{type(value).__name__} (value not shown: it is a secret)"
    return f"{type(value).__name__} {value!r:.80}"


def type_errors(user: Mapping[str, Any]) -> list[str]:
    """Return one message per known key whose value has the wrong type; secrets' values are never shown."""
    errors: list[str] = []

    def walk(given: Mapping[str, Any], schema: Mapping[str, Any], prefix: str) -> None:
        for key, value in given.items():
            if key not in schema:
                continue
            spec = schema[key]
            if not _matches(value, spec):
                errors.append(
                    f"{SETTING_NAME}[{prefix}{key}] must be {_type_name(spec)}, got {_shown(prefix + str(key), value)}."
                )
            elif isinstance(spec, dict):
                walk(value, spec, f"{prefix}{key}.")

    walk(user, SCHEMA, "")
    return errors
