"""Outbound HTTP calls carry the request's id and trace context: ``PRODKIT["PROPAGATE_OUTBOUND"]``.

Each named client (``requests``, ``httpx`` sync and async, ``urllib3``) is patched once, at startup, by
:func:`install`; a client not named is never imported. A call made while a request is handled gets the
request's ``X-Request-ID`` (also with tracing off) and, with tracing on, the trace headers and a CLIENT span.
"""

from __future__ import annotations

import importlib
import sys

from django_prodkit.conf import get_config

#: The clients that can be instrumented, with the module of this package that does it.
CLIENTS = {
    "requests": "django_prodkit.outbound.requests_client",
    "httpx": "django_prodkit.outbound.httpx_client",
    "urllib3": "django_prodkit.outbound.urllib3_client",
}


def install(names: list[str] | None = None) -> list[str]:
    """Patch the named clients (default: ``PROPAGATE_OUTBOUND``); returns those patched. Idempotent, never raises.

    Unknown or missing clients are skipped (the system checks ``prodkit.E063``/``W062`` report them).
    """
    if names is None:
        names = list(get_config()["PROPAGATE_OUTBOUND"])
    patched = []
    for name in names:
        module_name = CLIENTS.get(name)
        if module_name is None:
            continue
        try:
            module = importlib.import_module(module_name)
            module.install()
        except ImportError:
            continue
        patched.append(name)
    return patched


def uninstall() -> None:
    """Undo every patch (tests); imports no client that was not patched."""
    for module_name in CLIENTS.values():
        module = sys.modules.get(module_name)
        if module is not None:
            module.uninstall()
