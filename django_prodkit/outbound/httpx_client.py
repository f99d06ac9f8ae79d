"""``httpx``: every ``Client.send`` and ``AsyncClient.send`` carries the ids and makes a CLIENT span."""

from __future__ import annotations

from typing import Any

import httpx

from django_prodkit.outbound.calls import OutboundCall, enabled, in_call

CLIENT = "httpx"

_originals: tuple[Any, Any] | None = None


def _send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> Any:
    assert _originals is not None
    if in_call.get() or not enabled(CLIENT):
        return _originals[0](self, request, **kwargs)
    with OutboundCall(request.method, str(request.url), request.headers) as call:
        response = _originals[0](self, request, **kwargs)
        call.status = response.status_code
    return response


async def _asend(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> Any:
    assert _originals is not None
    if in_call.get() or not enabled(CLIENT):
        return await _originals[1](self, request, **kwargs)
    with OutboundCall(request.method, str(request.url), request.headers) as call:
        response = await _originals[1](self, request, **kwargs)
        call.status = response.status_code
    return response


def install() -> None:
    """Patch ``httpx.Client.send`` and ``httpx.AsyncClient.send`` (once)."""
    global _originals
    if _originals is None:
        _originals = (httpx.Client.send, httpx.AsyncClient.send)
        httpx.Client.send = _send  # type: ignore[method-assign]
        httpx.AsyncClient.send = _asend  # type: ignore[method-assign]


def uninstall() -> None:
    """Restore both ``send`` methods."""
    global _originals
    if _originals is not None:
        httpx.Client.send, httpx.AsyncClient.send = _originals  # type: ignore[method-assign]
        _originals = None
