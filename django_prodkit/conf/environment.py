"""The environment variables named in the docs: each overrides one ``PRODKIT`` key, parsed strictly."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

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
