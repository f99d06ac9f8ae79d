"""The single ``PRODKIT`` settings dict: defaults, environment overrides, validation, caching."""

from __future__ import annotations

import copy
import difflib
import math
import os
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTING_NAME = "PRODKIT"

#: Every key of ``PRODKIT`` with its default. Nested dicts are merged key by key.
DEFAULTS: dict[str, Any] = {
    "SERVICE_NAME": "django",
    "REQUEST_ID_HEADER": "X-Request-ID",
    "REQUEST_ID_TRUST_INCOMING": True,
    "REQUEST_ID_EXPOSE_HEADER": True,
    "ACCESS_LOG_LOGGER": "django_prodkit.access",
    "ACCESS_LOG_EXCLUDE_PATHS": [],
    "ACCESS_LOG_EXCLUDE_VIEWS": ["prodkit:healthcheck", "prodkit:readiness"],
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
    },
    "PROPAGATE_OUTBOUND": [],
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
    },
    "PROPAGATE_OUTBOUND": ListOf(str),
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
}

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def parse_bool(name: str, raw: str) -> bool:
    """Parse a boolean environment variable strictly; anything unrecognised is an error."""
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"Environment variable {name}={raw!r} is not a boolean; use one of "
        f"{', '.join(sorted(_TRUE))} or {', '.join(sorted(_FALSE - {''}))}."
    )


_OFF = frozenset({"", "off", "none"})


def parse_optional_count(name: str, raw: str) -> int | None:
    """Parse a threshold that is a positive whole number, or off (empty, ``off`` or ``none``)."""
    value = raw.strip().lower()
    if value in _OFF:
        return None
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise ImproperlyConfigured(f"Environment variable {name}={raw!r} is not a positive whole number or 'off'.")


def parse_optional_ms(name: str, raw: str) -> float | None:
    """Parse a threshold that is a positive, finite number of milliseconds, or off (empty, ``off`` or ``none``)."""
    value = raw.strip().lower()
    if value in _OFF:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise ImproperlyConfigured(
            f"Environment variable {name}={raw!r} is not a positive number of milliseconds or 'off'."
        )
    return number


def parse_csv(name: str, raw: str) -> list[str]:
    """Parse a comma-separated environment variable into its non-empty, stripped items."""
    return [item.strip() for item in raw.split(",") if item.strip()]


def parse_text(name: str, raw: str) -> str:
    """A text environment variable, stripped."""
    return raw.strip()


@dataclass(frozen=True)
class EnvOverride:
    """An environment variable that overrides one ``PRODKIT`` key (``path`` walks nested dicts)."""

    variable: str
    path: tuple[str, ...]
    parse: Callable[[str, str], Any]


#: Environment variables named in the docs, read here and nowhere else in the package.
ENV_OVERRIDES: list[EnvOverride] = [
    EnvOverride("ENABLE_XRAY", ("XRAY", "ENABLED"), parse_bool),
    EnvOverride("ENABLE_OTEL", ("OTEL", "ENABLED"), parse_bool),
    EnvOverride("ENABLE_CLOUDWATCH_METRICS", ("CLOUDWATCH", "ENABLED"), parse_bool),
    EnvOverride("PRODKIT_METRICS_TOKENS", ("METRICS_TOKENS",), parse_csv),
    EnvOverride("PRODKIT_DB_QUERY_WARNING", ("DB_QUERY_WARNING",), parse_optional_count),
    EnvOverride("PRODKIT_SLOW_REQUEST_MS", ("SLOW_REQUEST_MS",), parse_optional_ms),
    EnvOverride("PRODKIT_METRICS_INSTANCE", ("METRICS_INSTANCE",), parse_text),
]


class ConfigError(ImproperlyConfigured):
    """A ``PRODKIT`` problem found while reading the settings."""


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


def type_errors(user: Mapping[str, Any]) -> list[str]:
    """Return one message per known key whose value has the wrong type."""
    errors: list[str] = []

    def walk(given: Mapping[str, Any], schema: Mapping[str, Any], prefix: str) -> None:
        for key, value in given.items():
            if key not in schema:
                continue
            spec = schema[key]
            if not _matches(value, spec):
                errors.append(
                    f"{SETTING_NAME}[{prefix}{key}] must be {_type_name(spec)}, "
                    f"got {type(value).__name__} {value!r:.80}."
                )
            elif isinstance(spec, dict):
                walk(value, spec, f"{prefix}{key}.")

    walk(user, SCHEMA, "")
    return errors


def user_settings() -> Mapping[str, Any]:
    """The raw ``PRODKIT`` dict from the Django settings (empty when unset)."""
    value = getattr(settings, SETTING_NAME, None)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{SETTING_NAME} must be a dict, got {type(value).__name__}.")
    return value


def _merge(defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    # A deep copy: the environment overrides are applied in place and must never reach DEFAULTS.
    merged = copy.deepcopy(dict(defaults))
    for key, value in given.items():
        if key in defaults and isinstance(defaults[key], dict) and isinstance(value, Mapping):
            merged[key] = _merge(defaults[key], value)
        elif key in defaults:
            merged[key] = value
    return merged


def apply_env(config: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Override ``config`` in place from the documented environment variables."""
    for override in ENV_OVERRIDES:
        raw = environ.get(override.variable)
        if raw is None:
            continue
        target = config
        for part in override.path[:-1]:
            target = target[part]
        target[override.path[-1]] = override.parse(override.variable, raw)


def freeze(value: Any) -> Any:
    """``value`` made read-only all the way down: dicts become ``MappingProxyType``, lists tuples."""
    if isinstance(value, Mapping):
        return types.MappingProxyType({key: freeze(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(item) for item in value)
    return value


@lru_cache(maxsize=1)
def get_config() -> Mapping[str, Any]:
    """Return the effective configuration: defaults, then ``PRODKIT``, then environment variables.

    The mapping is shared by every caller, so it is read-only: nested dicts are mappings that refuse writes
    and lists are tuples. Raises :class:`~django.core.exceptions.ImproperlyConfigured` for a value of the wrong
    type or an environment variable that does not parse; unknown keys are left to the system checks.
    """
    given = user_settings()
    errors = type_errors(given)
    if errors:
        raise ConfigError(" ".join(errors))
    config = _merge(DEFAULTS, given)
    apply_env(config, os.environ)
    frozen: Mapping[str, Any] = freeze(config)
    return frozen


def reset_config() -> None:
    """Forget the cached configuration (called when Django's settings change)."""
    get_config.cache_clear()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME or setting == "MIDDLEWARE":
        reset_config()
