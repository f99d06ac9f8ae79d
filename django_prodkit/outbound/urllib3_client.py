"""``urllib3``: every ``HTTPConnectionPool.urlopen`` (``PoolManager`` and ``urllib3.request`` included).

urllib3 has no hook around a request, so ``urlopen`` itself is wrapped. It calls itself again for each
retry and redirect, with its arguments by position: the wrapper passes every argument through as given,
and the calls inside the first make no span of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from urllib3 import HTTPHeaderDict
from urllib3.connectionpool import HTTPConnectionPool

from django_prodkit.outbound.calls import OutboundCall, enabled, in_call
from django_prodkit.outbound.patch import Arguments, Patch

CLIENT = "urllib3"


def _urlopen(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], arguments: Arguments) -> Any:
    if in_call.get() or not enabled(CLIENT):
        return original(*args, **kwargs)
    pool = arguments.get(args, kwargs, "self")
    method = arguments.get(args, kwargs, "method")
    url = arguments.get(args, kwargs, "url")
    if not isinstance(pool, HTTPConnectionPool) or not isinstance(method, str) or not isinstance(url, str):
        return original(*args, **kwargs)
    given = arguments.get(args, kwargs, "headers")
    # A case-insensitive copy: the caller's dict (or the pool's defaults) must not keep this request's ids.
    headers = HTTPHeaderDict(given if given is not None else pool.headers)
    args, kwargs = arguments.replace(args, kwargs, "headers", headers)
    full_url = url if "://" in url else f"{pool.scheme}://{pool.host}:{pool.port}{url}"
    with OutboundCall(method, full_url, headers) as call:
        response = original(*args, **kwargs)
        call.status = getattr(response, "status", None)
    return response


PATCH = Patch(HTTPConnectionPool, "urlopen", _urlopen)


def install() -> None:
    """Wrap ``urllib3.connectionpool.HTTPConnectionPool.urlopen`` (once)."""
    PATCH.install()


def uninstall() -> None:
    """Remove the wrapper (or turn it into a pass-through under another library's)."""
    PATCH.uninstall()
