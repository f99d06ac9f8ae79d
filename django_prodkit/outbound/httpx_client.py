"""``httpx``: the transports (``HTTPTransport``, ``AsyncHTTPTransport``, what every ``Client`` and
``AsyncClient`` sends through unless given another) carry the ids and make a CLIENT span per request sent.

The transport is httpx's own extension point for what happens to each request; a redirect the client
follows is a second request, with a span of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from django_prodkit.outbound.calls import OutboundCall, enabled, in_call
from django_prodkit.outbound.patch import Arguments, Patch

CLIENT = "httpx"


def _handle(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], arguments: Arguments) -> Any:
    request = arguments.get(args, kwargs, "request")
    if in_call.get() or not enabled(CLIENT) or not isinstance(request, httpx.Request):
        return original(*args, **kwargs)
    with OutboundCall(request.method, str(request.url), request.headers) as call:
        response = original(*args, **kwargs)
        call.status = getattr(response, "status_code", None)
    return response


async def _ahandle(
    original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], arguments: Arguments
) -> Any:
    request = arguments.get(args, kwargs, "request")
    if in_call.get() or not enabled(CLIENT) or not isinstance(request, httpx.Request):
        return await original(*args, **kwargs)
    with OutboundCall(request.method, str(request.url), request.headers) as call:
        response = await original(*args, **kwargs)
        call.status = getattr(response, "status_code", None)
    return response


PATCHES = (
    Patch(httpx.HTTPTransport, "handle_request", _handle),
    Patch(httpx.AsyncHTTPTransport, "handle_async_request", _ahandle, is_async=True),
)


def install() -> None:
    """Wrap ``httpx.HTTPTransport.handle_request`` and ``httpx.AsyncHTTPTransport.handle_async_request`` (once)."""
    for patch in PATCHES:
        patch.install()


def uninstall() -> None:
    """Remove both wrappers (or turn them into pass-throughs under another library's)."""
    for patch in PATCHES:
        patch.uninstall()
