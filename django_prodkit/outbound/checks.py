"""System checks for the hosts outbound calls carry headers to (``prodkit.E110``, ``W112``).

Nothing of any HTTP client is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from django_prodkit.conf import get_config

CHECK_IDS: dict[str, str] = {
    "prodkit.E110": "A PROPAGATE_OUTBOUND_HOSTS entry is not a host pattern.",
    "prodkit.W112": "Outbound calls to every host carry the request id and trace headers (deploy).",
}

_NOT_IN_A_HOST = ("/", ":", "@", " ", "?", "#")


def _config() -> Mapping[str, Any] | None:
    try:
        return get_config()
    except ImproperlyConfigured:
        return None  # prodkit.E002/E003 report it


def check_outbound_hosts(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every ``PROPAGATE_OUTBOUND_HOSTS`` entry is ``"*"``, a host name, or ``.domain`` (no scheme, port, path)."""
    config = _config()
    if config is None:
        return []
    bad = [
        pattern
        for pattern in config["PROPAGATE_OUTBOUND_HOSTS"]
        if pattern != "*" and (not pattern.strip(".") or any(char in pattern for char in _NOT_IN_A_HOST))
    ]
    if not bad:
        return []
    return [
        checks.Error(
            f"PRODKIT['PROPAGATE_OUTBOUND_HOSTS'] has entries that are not host patterns: {', '.join(map(repr, bad))}.",
            hint='Give host names as in ALLOWED_HOSTS: "api.internal", ".internal" (the domain and its subdomains).',
            id="prodkit.E110",
        )
    ]


def check_outbound_deploy(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """With ``PROPAGATE_OUTBOUND`` on, ``PROPAGATE_OUTBOUND_HOSTS`` should not be ``"*"`` in production."""
    config = _config()
    if config is None or not config["PROPAGATE_OUTBOUND"] or "*" not in config["PROPAGATE_OUTBOUND_HOSTS"]:
        return []
    return [
        checks.Warning(
            "PROPAGATE_OUTBOUND sends X-Request-ID and the trace headers on calls to every host, third-party APIs "
            "included (PROPAGATE_OUTBOUND_HOSTS is '*').",
            hint='List your own services: PRODKIT["PROPAGATE_OUTBOUND_HOSTS"] = [".internal", "api.example.com"].',
            id="prodkit.W112",
        )
    ]


def register() -> None:
    """Register the outbound checks (the deploy one runs with ``check --deploy`` only)."""
    checks.register(check_outbound_hosts, "prodkit")
    checks.register(check_outbound_deploy, "prodkit", deploy=True)
