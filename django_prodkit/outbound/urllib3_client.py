"""``urllib3``: every ``HTTPConnectionPool.urlopen`` (``PoolManager`` and ``urllib3.request`` included)."""

from __future__ import annotations

from typing import Any

from urllib3.connectionpool import HTTPConnectionPool

from django_prodkit.outbound.calls import OutboundCall, enabled, in_call

CLIENT = "urllib3"

_original: Any = None


def _urlopen(
    self: HTTPConnectionPool, method: str, url: str, body: Any = None, headers: Any = None, **kwargs: Any
) -> Any:
    if in_call.get() or not enabled(CLIENT):
        return _original(self, method, url, body, headers, **kwargs)
    # A copy: the caller's dict (or the pool's defaults) must not keep this request's ids.
    headers = dict(headers if headers is not None else self.headers)
    full_url = url if "://" in url else f"{self.scheme}://{self.host}:{self.port}{url}"
    with OutboundCall(method, full_url, headers) as call:
        response = _original(self, method, url, body, headers, **kwargs)
        call.status = response.status
    return response


def install() -> None:
    """Patch ``urllib3.connectionpool.HTTPConnectionPool.urlopen`` (once)."""
    global _original
    if _original is None:
        _original = HTTPConnectionPool.urlopen
        HTTPConnectionPool.urlopen = _urlopen  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    """Restore ``urlopen``."""
    global _original
    if _original is not None:
        HTTPConnectionPool.urlopen = _original  # type: ignore[method-assign]
        _original = None
