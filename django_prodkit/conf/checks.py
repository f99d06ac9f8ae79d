"""System checks for the ``PRODKIT`` dict itself: unknown keys, wrong types, unreadable environment variables."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from django_prodkit import conf

#: The ids of this concern's checks, with a one-line summary (the docs list them all).
CHECK_IDS: dict[str, str] = {
    "prodkit.E001": "PRODKIT has a key that does not exist.",
    "prodkit.E002": "A PRODKIT value has the wrong type.",
    "prodkit.E003": "PRODKIT or a documented environment variable cannot be read.",
    "prodkit.E004": "REQUEST_ID_HEADER is not a valid HTTP header name.",
}

_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


def _hint_for(key: str, close: str | None) -> str:
    if close:
        return f"Did you mean {close!r}? See the settings reference for every key."
    return "Remove it; the settings reference lists every key."


def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Unknown keys, wrong types and unreadable environment variables in the configuration."""
    try:
        given = conf.user_settings()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint="Set PRODKIT to a dict.", id="prodkit.E003")]
    messages: list[checks.CheckMessage] = [
        checks.Error(
            f"{conf.SETTING_NAME}[{key!r}] is not a django-prodkit setting.",
            hint=_hint_for(key, close),
            id="prodkit.E001",
        )
        for key, close in conf.unknown_keys(given)
    ]
    messages.extend(
        checks.Error(text, hint="See the settings reference for the accepted type.", id="prodkit.E002")
        for text in conf.type_errors(given)
    )
    if messages:
        return messages
    try:
        conf.reset_config()
        config = conf.get_config()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint="Fix or unset the environment variable.", id="prodkit.E003")]
    if not _HEADER_NAME.fullmatch(config["REQUEST_ID_HEADER"]):
        messages.append(
            checks.Error(
                f"PRODKIT['REQUEST_ID_HEADER'] = {config['REQUEST_ID_HEADER']!r} is not a valid header name.",
                hint="Use letters, digits and hyphens, e.g. 'X-Request-ID'.",
                id="prodkit.E004",
            )
        )
    return messages


def register() -> None:
    """Register the settings check (called from :func:`django_prodkit.checks.register_all`)."""
    checks.register(check_settings, "prodkit")
