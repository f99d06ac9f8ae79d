"""Small, hot-path helpers that turn untrusted request data into bounded values."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject, empty

#: The route reported for a request that matched no URL pattern (a 404 from the resolver).
UNMATCHED_ROUTE = "<unmatched>"

#: The method reported for anything outside :data:`KNOWN_METHODS`.
OTHER_METHOD = "OTHER"

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})


def normalize_method(method: str | None) -> str:
    """The request method, or :data:`OTHER_METHOD` when it is not a standard one."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


def route_of(request: HttpRequest) -> str:
    """The URL pattern that served ``request`` with its include prefixes, e.g. ``/api/v1/posts/<slug:slug>/``.

    A request that matched no pattern gets :data:`UNMATCHED_ROUTE`, so random paths add no new values.
    """
    match = getattr(request, "resolver_match", None)
    if match is None or match.route is None:
        return UNMATCHED_ROUTE
    return "/" + str(match.route)


def user_id_of(request: HttpRequest) -> Any:
    """The primary key of the authenticated user if it is already loaded, else ``None``.

    Never triggers the session or database lookup that evaluating ``request.user`` would.
    """
    user: Any = request.__dict__.get("user")
    if user is None:
        return None
    if isinstance(user, SimpleLazyObject):
        user = user._wrapped
        if user is empty:
            return None
    if getattr(user, "is_authenticated", False):
        return getattr(user, "pk", None)
    return None
