"""Hardened Django settings as dicts to merge into a settings module (public through :mod:`django_prodkit.settings`).

::

    globals().update(session_hardening())
    globals().update(security_hardening(behind_proxy=True))

Each returns a fresh dict; a keyword overrides one of its keys, and an unknown key or a bad value raises
:class:`~django.core.exceptions.ImproperlyConfigured` naming it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

#: The environment variable that overrides ``SESSION_COOKIE_AGE`` (seconds, a positive integer).
SESSION_COOKIE_AGE_ENV = "SESSION_COOKIE_AGE"

#: One hour: long enough for a working session, short enough that a stolen cookie soon expires.
DEFAULT_SESSION_COOKIE_AGE = 3600

#: The HSTS ramp-up in seconds: 1 hour, 1 day, 1 week, 30 days, 1 year. Move one step per successful week.
HSTS_RAMP_UP: tuple[int, ...] = (3600, 86400, 604800, 2592000, 31536000)

#: The header a TLS-terminating proxy (App Runner, ALB, CloudFront) sets to tell Django the scheme was https.
FORWARDED_PROTO = ("HTTP_X_FORWARDED_PROTO", "https")

SAMESITE_VALUES = ("Lax", "Strict", "None")
REFERRER_POLICIES = (
    "no-referrer",
    "no-referrer-when-downgrade",
    "origin",
    "origin-when-cross-origin",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
    "unsafe-url",
)
COOP_VALUES = ("same-origin", "same-origin-allow-popups", "unsafe-none")
FRAME_OPTIONS = ("DENY", "SAMEORIGIN")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive integer of seconds, got {value!r}.")
    return value


def _non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ImproperlyConfigured(f"{name} must be a non-negative integer of seconds, got {value!r}.")
    return value


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ImproperlyConfigured(f"{name} must be True or False, got {value!r}.")
    return value


def _one_of(*choices: object) -> Callable[[str, Any], Any]:
    def validate(name: str, value: Any) -> Any:
        if value not in choices:
            raise ImproperlyConfigured(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}.")
        return value

    return validate


def _proxy_header(name: str, value: Any) -> tuple[str, str]:
    if not (isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, str) and v for v in value)):
        raise ImproperlyConfigured(f"{name} must be a (META key, value) tuple such as {FORWARDED_PROTO!r}.")
    if not value[0].startswith("HTTP_"):
        raise ImproperlyConfigured(f"{name}[0] must be a request.META key starting with 'HTTP_', got {value[0]!r}.")
    return (value[0], value[1])


_SAMESITE = _one_of(*SAMESITE_VALUES, False)

_SESSION_SCHEMA: dict[str, Callable[[str, Any], Any]] = {
    "SESSION_COOKIE_AGE": _positive_int,
    "SESSION_EXPIRE_AT_BROWSER_CLOSE": _boolean,
    "SESSION_SAVE_EVERY_REQUEST": _boolean,
    "SESSION_COOKIE_SECURE": _boolean,
    "SESSION_COOKIE_HTTPONLY": _boolean,
    "SESSION_COOKIE_SAMESITE": _SAMESITE,
    "CSRF_COOKIE_SECURE": _boolean,
    "CSRF_COOKIE_HTTPONLY": _boolean,
    "CSRF_COOKIE_SAMESITE": _SAMESITE,
}

_SECURITY_SCHEMA: dict[str, Callable[[str, Any], Any]] = {
    "SECURE_SSL_REDIRECT": _boolean,
    "SECURE_HSTS_SECONDS": _non_negative_int,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": _boolean,
    "SECURE_HSTS_PRELOAD": _boolean,
    "SECURE_CONTENT_TYPE_NOSNIFF": _boolean,
    "SECURE_REFERRER_POLICY": _one_of(*REFERRER_POLICIES),
    "SECURE_CROSS_ORIGIN_OPENER_POLICY": _one_of(*COOP_VALUES),
    "X_FRAME_OPTIONS": _one_of(*FRAME_OPTIONS),
    "SECURE_PROXY_SSL_HEADER": _proxy_header,
}


def _apply(
    defaults: dict[str, Any], schema: Mapping[str, Callable[[str, Any], Any]], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(schema))
    if unknown:
        raise ImproperlyConfigured(
            f"Unknown setting(s) {', '.join(unknown)}; this helper accepts {', '.join(sorted(schema))}."
        )
    merged = dict(defaults)
    for name, value in overrides.items():
        merged[name] = schema[name](name, value)
    return merged


def parse_session_cookie_age(raw: str) -> int:
    """Parse the ``SESSION_COOKIE_AGE`` environment variable: a positive integer of seconds, else an error."""
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise ImproperlyConfigured(
            f"Environment variable {SESSION_COOKIE_AGE_ENV}={raw!r} must be a positive integer of seconds."
        )
    return int(text)


def session_hardening(**overrides: Any) -> dict[str, Any]:
    """Short, sliding, cookie-safe sessions: a 1-hour age (env ``SESSION_COOKIE_AGE``), Secure, HttpOnly, Lax.

    The order is: these defaults, then ``overrides``, then the ``SESSION_COOKIE_AGE`` environment variable.
    """
    settings = _apply(
        {
            "SESSION_COOKIE_AGE": DEFAULT_SESSION_COOKIE_AGE,
            "SESSION_EXPIRE_AT_BROWSER_CLOSE": True,
            "SESSION_SAVE_EVERY_REQUEST": True,
            "SESSION_COOKIE_SECURE": True,
            "SESSION_COOKIE_HTTPONLY": True,
            "SESSION_COOKIE_SAMESITE": "Lax",
            "CSRF_COOKIE_SECURE": True,
            # JavaScript must read the CSRF cookie to send the token; HttpOnly would only break that.
            "CSRF_COOKIE_HTTPONLY": False,
            "CSRF_COOKIE_SAMESITE": "Lax",
        },
        _SESSION_SCHEMA,
        overrides,
    )
    raw_age = os.environ.get(SESSION_COOKIE_AGE_ENV)
    if raw_age is not None:
        settings["SESSION_COOKIE_AGE"] = parse_session_cookie_age(raw_age)
    for prefix in ("SESSION", "CSRF"):
        if settings[f"{prefix}_COOKIE_SAMESITE"] == "None" and not settings[f"{prefix}_COOKIE_SECURE"]:
            raise ImproperlyConfigured(
                f"{prefix}_COOKIE_SAMESITE='None' needs {prefix}_COOKIE_SECURE=True; browsers drop such cookies."
            )
    return settings


def security_hardening(
    *, behind_proxy: bool = False, hsts_include_subdomains: bool = False, hsts_preload: bool = False, **overrides: Any
) -> dict[str, Any]:
    """HTTPS-only transport and safe headers: SSL redirect, HSTS, nosniff, referrer, COOP, ``X-Frame-Options``.

    Pass ``behind_proxy=True`` only when a TLS-terminating proxy that sets ``X-Forwarded-Proto`` is the sole way
    in; it adds ``SECURE_PROXY_SSL_HEADER``, without which the SSL redirect loops behind such a proxy.
    HSTS covers this host only unless ``hsts_include_subdomains=True``; ``hsts_preload=True`` (which needs it)
    adds ``preload``, the request to be built into browsers, which is slow to undo for the whole domain.
    """
    for name, value in (
        ("behind_proxy", behind_proxy),
        ("hsts_include_subdomains", hsts_include_subdomains),
        ("hsts_preload", hsts_preload),
    ):
        if not isinstance(value, bool):
            raise ImproperlyConfigured(f"{name} must be True or False, got {value!r}.")
    if hsts_preload and not hsts_include_subdomains:
        raise ImproperlyConfigured(
            "hsts_preload=True needs hsts_include_subdomains=True: browsers' preload lists accept only a domain "
            "whose HSTS covers every subdomain."
        )
    if "SECURE_PROXY_SSL_HEADER" in overrides and not behind_proxy:
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER is given but behind_proxy is False; trusting a forwarded scheme without a "
            "proxy that sets it lets any client claim https. Pass behind_proxy=True."
        )
    defaults: dict[str, Any] = {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": HSTS_RAMP_UP[0],
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": hsts_include_subdomains,
        "SECURE_HSTS_PRELOAD": hsts_preload,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_REFERRER_POLICY": "same-origin",
        "SECURE_CROSS_ORIGIN_OPENER_POLICY": "same-origin",
        "X_FRAME_OPTIONS": "DENY",
    }
    if behind_proxy:
        defaults["SECURE_PROXY_SSL_HEADER"] = FORWARDED_PROTO
    return _apply(defaults, _SECURITY_SCHEMA, overrides)
