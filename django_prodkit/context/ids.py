"""The id of the unit of work (request, task run, command run): made, validated, and current in this context."""

from __future__ import annotations

import os
import re
import threading
from contextvars import ContextVar, Token

#: The longest incoming id that is kept.
MAX_REQUEST_ID_LENGTH = 128

# Letters, digits and -_.:=+/@; admit UUIDs, hex ids and AWS "Root=1-...;Parent=..." ids, and
# exclude everything that could split a header or a log line (CR, LF, quotes, spaces, non-ASCII).
_VALID_REQUEST_ID = re.compile(rf"[A-Za-z0-9\-_.:=+/@;]{{1,{MAX_REQUEST_ID_LENGTH}}}", re.ASCII)


def is_valid_request_id(value: str) -> bool:
    """Whether an incoming id may be kept as it is."""
    return _VALID_REQUEST_ID.fullmatch(value) is not None


# The uuid4 variant nibble (10xx) for each random hex digit.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def generate_request_id() -> str:
    """A fresh random id: a uuid4 in its canonical form (122 random bits).

    Built from ``os.urandom`` directly; ``str(uuid.uuid4())`` gives the same format at twice the cost.
    """
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def resolve_request_id(incoming: str | None, *, trust_incoming: bool = True) -> str:
    """The id to use for a request: the incoming one when trusted and valid, else a new one."""
    if trust_incoming and incoming and _VALID_REQUEST_ID.fullmatch(incoming) is not None:
        return incoming
    return generate_request_id()


_current_request_id: ContextVar[str | None] = ContextVar("prodkit_request_id", default=None)

# The id of the last request this thread finished: Django's development server writes its ``django.server``
# line after the response, when the ContextVar is reset, in the thread that served the request.
_finished_in_thread = threading.local()


def get_request_id() -> str | None:
    """The id of the request being handled in this context, or ``None`` outside a request."""
    return _current_request_id.get()


def set_request_id(value: str | None) -> Token[str | None]:
    """Make ``value`` the current id; pass the returned token to :func:`reset_request_id`."""
    return _current_request_id.set(value)


def reset_request_id(token: Token[str | None]) -> None:
    """Restore the id that was current before :func:`set_request_id`."""
    _current_request_id.reset(token)


def mark_finished_in_thread(request_id: str) -> None:
    """Remember ``request_id`` as the last one this thread served (for :func:`last_finished_in_thread`)."""
    _finished_in_thread.request_id = request_id


def last_finished_in_thread() -> str | None:
    """The id of the last request this thread served through ``RequestIDMiddleware`` in sync mode, if any."""
    request_id: str | None = getattr(_finished_in_thread, "request_id", None)
    return request_id
