"""``Authorization: Bearer <token>`` authentication."""

from __future__ import annotations

from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """DRF's token authentication with the standard ``Bearer`` keyword instead of ``Token``."""

    keyword = "Bearer"
