"""Who may read the metrics: a Bearer token from ``METRICS_TOKENS`` (constant-time compare) or a staff user."""

from __future__ import annotations

import enum
import hmac

from django.http import HttpRequest

from django_prodkit.conf import get_config

AUTHORIZATION = "HTTP_AUTHORIZATION"
BEARER = "bearer"


class Access(enum.Enum):
    """The outcome of :func:`authorize`."""

    GRANTED = "granted"
    #: No credentials at all: answer 401 with ``WWW-Authenticate: Bearer``.
    MISSING = "missing"
    #: A wrong token or a logged-in user who is not staff: answer 403.
    DENIED = "denied"


def bearer_token(request: HttpRequest) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or ``None`` for any other header."""
    header: str = request.META.get(AUTHORIZATION, "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != BEARER:
        return None
    return token.strip()


def token_matches(token: str, tokens: list[str]) -> bool:
    """Whether ``token`` equals one of ``tokens``; every candidate is compared, each in constant time."""
    given = token.encode()
    matched = False
    for candidate in tokens:
        # Empty tokens never grant access, whatever an empty or malformed header holds.
        if candidate and hmac.compare_digest(given, candidate.encode()):
            matched = True
    return matched


def _staff_user(request: HttpRequest) -> bool | None:
    """``True`` for staff, ``False`` for another logged-in user, ``None`` when no one is logged in."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return bool(user.is_active and user.is_staff)


def authorize(request: HttpRequest) -> Access:
    """Decide access to the metrics endpoint; a staff session or one valid token suffices."""
    token = bearer_token(request)
    if token is not None and token_matches(token, get_config()["METRICS_TOKENS"]):
        return Access.GRANTED
    staff = _staff_user(request)
    if staff:
        return Access.GRANTED
    if token is not None or staff is False:
        return Access.DENIED
    return Access.MISSING
