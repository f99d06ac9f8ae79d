"""``requests``: every transport adapter's ``send`` (``HTTPAdapter``, the adapter ``Session`` mounts) carries
the ids and makes a CLIENT span; ``requests.get`` and every ``Session`` go through it.

A redirect followed by the session is a second request, with a span of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from requests.adapters import HTTPAdapter

from django_prodkit.outbound.calls import OutboundCall, enabled, in_call
from django_prodkit.outbound.patch import Arguments, Patch

CLIENT = "requests"


def _send(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], arguments: Arguments) -> Any:
    request = arguments.get(args, kwargs, "request")
    if in_call.get() or not enabled(CLIENT) or request is None:
        return original(*args, **kwargs)
    # The prepared request's headers are requests' case-insensitive dict, owned by this request.
    with OutboundCall(request.method or "GET", request.url or "", request.headers) as call:
        response = original(*args, **kwargs)
        call.status = getattr(response, "status_code", None)
    return response


PATCH = Patch(HTTPAdapter, "send", _send)


def install() -> None:
    """Wrap ``requests.adapters.HTTPAdapter.send`` (once)."""
    PATCH.install()


def uninstall() -> None:
    """Remove the wrapper (or turn it into a pass-through under another library's)."""
    PATCH.uninstall()
