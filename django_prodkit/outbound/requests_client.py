"""``requests``: every ``Session.send`` (so ``requests.get`` too) carries the ids and makes a CLIENT span."""

from __future__ import annotations

from typing import Any

import requests

from django_prodkit.outbound.calls import OutboundCall, enabled, in_call

CLIENT = "requests"

_original: Any = None


def _send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
    if in_call.get() or not enabled(CLIENT):
        return _original(self, request, **kwargs)
    with OutboundCall(request.method or "GET", request.url or "", request.headers) as call:
        response = _original(self, request, **kwargs)
        call.status = response.status_code
    return response


def install() -> None:
    """Patch ``requests.Session.send`` (once)."""
    global _original
    if _original is None:
        _original = requests.Session.send
        requests.Session.send = _send  # type: ignore[method-assign]


def uninstall() -> None:
    """Restore ``requests.Session.send``."""
    global _original
    if _original is not None:
        requests.Session.send = _original  # type: ignore[method-assign]
        _original = None
