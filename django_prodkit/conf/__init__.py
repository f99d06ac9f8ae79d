"""The single ``PRODKIT`` settings dict: defaults, then the user's values, then the environment; cached.

The schema and defaults are in :mod:`django_prodkit.conf.schema`, the environment variables in
:mod:`django_prodkit.conf.environment`; the cache is cleared on Django's ``setting_changed``.
"""

from __future__ import annotations

import copy
import os
import types
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from django_prodkit.conf.environment import ENV_OVERRIDES, EnvOverride, apply_env, parse_bool, parse_csv
from django_prodkit.conf.schema import DEFAULTS, SCHEMA, SETTING_NAME, ListOf, type_errors, unknown_keys

__all__ = [
    "DEFAULTS",
    "ENV_OVERRIDES",
    "SCHEMA",
    "SETTING_NAME",
    "ConfigError",
    "EnvOverride",
    "ListOf",
    "apply_env",
    "get_config",
    "parse_bool",
    "parse_csv",
    "reset_config",
    "type_errors",
    "unknown_keys",
    "user_settings",
]


class ConfigError(ImproperlyConfigured):
    """A ``PRODKIT`` problem found while reading the settings."""


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
