"""Request ids: one per request, kept from a valid ``X-Request-ID`` or made fresh, echoed and on every log line.

The id of the current request (or task or command run) lives on :mod:`django_prodkit.context`; these are its
public names, so ``from django_prodkit.request_id import get_request_id`` keeps working.
"""

from __future__ import annotations

from django_prodkit.context.ids import (
    MAX_REQUEST_ID_LENGTH,
    generate_request_id,
    get_request_id,
    is_valid_request_id,
    reset_request_id,
    resolve_request_id,
    set_request_id,
)
from django_prodkit.request_id.streaming import aiterate_with_request_id, iterate_with_request_id

__all__ = [
    "MAX_REQUEST_ID_LENGTH",
    "aiterate_with_request_id",
    "generate_request_id",
    "get_request_id",
    "is_valid_request_id",
    "iterate_with_request_id",
    "reset_request_id",
    "resolve_request_id",
    "set_request_id",
]
