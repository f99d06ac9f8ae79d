"""Helpers that return hardened Django settings to merge into a settings module.

::

    globals().update(session_hardening())
    globals().update(security_hardening(behind_proxy=True))

Each returns a fresh dict; a keyword overrides one of its keys, and an unknown key or a bad value raises
:class:`~django.core.exceptions.ImproperlyConfigured` naming it. The work is in
:mod:`django_prodkit.security.hardening`; this is the path settings modules import.
"""

from __future__ import annotations

from django_prodkit.security.hardening import (
    COOP_VALUES,
    DEFAULT_SESSION_COOKIE_AGE,
    FORWARDED_PROTO,
    FRAME_OPTIONS,
    HSTS_RAMP_UP,
    REFERRER_POLICIES,
    SAMESITE_VALUES,
    SESSION_COOKIE_AGE_ENV,
    parse_session_cookie_age,
    security_hardening,
    session_hardening,
)

__all__ = [
    "COOP_VALUES",
    "DEFAULT_SESSION_COOKIE_AGE",
    "FORWARDED_PROTO",
    "FRAME_OPTIONS",
    "HSTS_RAMP_UP",
    "REFERRER_POLICIES",
    "SAMESITE_VALUES",
    "SESSION_COOKIE_AGE_ENV",
    "parse_session_cookie_age",
    "security_hardening",
    "session_hardening",
]
