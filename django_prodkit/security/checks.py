"""Deploy checks (tag ``security``) for what Django's ``check --deploy`` leaves out: session lifetime and cookies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from django_prodkit import conf

SESSION_MIDDLEWARE = "django.contrib.sessions.middleware.SessionMiddleware"
SESSIONS_APP = "django.contrib.sessions"

#: Hosts for which a plain-http trusted origin is a development leftover rather than a production origin.
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


#: The ids of this concern's checks, with a one-line summary (the docs list them all).
CHECK_IDS: dict[str, str] = {
    "prodkit.W010": "SESSION_COOKIE_AGE is longer than SESSION_MAX_AGE_WARNING (deploy).",
    "prodkit.W011": "SESSION_EXPIRE_AT_BROWSER_CLOSE is off (deploy).",
    "prodkit.W012": "SESSION_COOKIE_SAMESITE is 'None' without SESSION_COOKIE_SECURE (deploy).",
    "prodkit.W013": "CSRF_COOKIE_SAMESITE is 'None' without CSRF_COOKIE_SECURE (deploy).",
    "prodkit.W015": "A CSRF_TRUSTED_ORIGINS entry is plain http for a non-local host (deploy).",
}


def _sessions_in_use() -> bool:
    return SESSIONS_APP in settings.INSTALLED_APPS or SESSION_MIDDLEWARE in (settings.MIDDLEWARE or [])


def _is_local(origin: str) -> bool:
    try:
        return urlsplit(origin).hostname in _LOCAL_HOSTS
    except ValueError:
        return False


def _max_session_age() -> int | None:
    try:
        return int(conf.get_config()["SESSION_MAX_AGE_WARNING"])
    except ImproperlyConfigured:
        return None  # prodkit.E003 reports an unreadable configuration


def check_session_lifetime(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Sessions that outlive ``SESSION_MAX_AGE_WARNING`` or survive closing the browser."""
    if not _sessions_in_use():
        return []
    messages: list[checks.CheckMessage] = []
    limit = _max_session_age()
    age = settings.SESSION_COOKIE_AGE
    if limit is not None and age > limit:
        messages.append(
            checks.Warning(
                f"SESSION_COOKIE_AGE is {age} seconds ({age / 3600:g} hours), longer than the {limit} seconds "
                "allowed by PRODKIT['SESSION_MAX_AGE_WARNING']; a stolen session cookie stays valid that long.",
                hint="Use django_prodkit.settings.session_hardening() (1 hour, sliding) or lower SESSION_COOKIE_AGE.",
                id="prodkit.W010",
            )
        )
    if not settings.SESSION_EXPIRE_AT_BROWSER_CLOSE:
        messages.append(
            checks.Warning(
                "SESSION_EXPIRE_AT_BROWSER_CLOSE is False, so sessions persist after the browser is closed.",
                hint="Set SESSION_EXPIRE_AT_BROWSER_CLOSE = True (session_hardening() does).",
                id="prodkit.W011",
            )
        )
    return messages


def check_samesite_none(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``SameSite=None`` cookies without ``Secure``, which browsers reject or send in plain text."""
    messages: list[checks.CheckMessage] = []
    cookies = [("SESSION", "prodkit.W012")] if _sessions_in_use() else []
    cookies.append(("CSRF", "prodkit.W013"))
    for prefix, check_id in cookies:
        samesite = getattr(settings, f"{prefix}_COOKIE_SAMESITE")
        # Django and browsers read the attribute case-insensitively: "none" is SameSite=None too.
        if (
            isinstance(samesite, str)
            and samesite.lower() == "none"
            and not getattr(settings, f"{prefix}_COOKIE_SECURE")
        ):
            messages.append(
                checks.Warning(
                    f"{prefix}_COOKIE_SAMESITE is {samesite!r} but {prefix}_COOKIE_SECURE is False; browsers drop such "
                    "cookies, and any that are kept cross sites in plain text.",
                    hint=f"Set {prefix}_COOKIE_SECURE = True, or use SameSite 'Lax' unless you need cross-site.",
                    id=check_id,
                )
            )
    return messages


def check_csrf_trusted_origins(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``CSRF_TRUSTED_ORIGINS`` entries with plain http for a non-local host (Django's 4_0.E001 covers no scheme)."""
    origins = [str(origin) for origin in getattr(settings, "CSRF_TRUSTED_ORIGINS", [])]
    messages: list[checks.CheckMessage] = []
    plain = [origin for origin in origins if origin.startswith("http://") and not _is_local(origin)]
    if plain:
        messages.append(
            checks.Warning(
                f"CSRF_TRUSTED_ORIGINS trusts plain-http origins: {', '.join(map(repr, plain))}; a network attacker "
                "can post from them.",
                hint="Use https:// origins in production.",
                id="prodkit.W015",
            )
        )
    return messages


def register() -> None:
    """Register the deploy checks (called from :func:`django_prodkit.checks.register_all`)."""
    for check in (check_session_lifetime, check_samesite_none, check_csrf_trusted_origins):
        checks.register(check, checks.Tags.security, "prodkit", deploy=True)
