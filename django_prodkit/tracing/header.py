"""The ``X-Amzn-Trace-Id`` header: strict parsing of what clients send, and the ids X-Ray expects."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

#: The header that carries the trace id, parent id and sampling decision between services.
TRACE_HEADER = "X-Amzn-Trace-Id"

#: :data:`TRACE_HEADER` as it appears in ``request.META``.
TRACE_HEADER_META = "HTTP_X_AMZN_TRACE_ID"

#: Longer headers are ignored as a whole rather than parsed.
MAX_TRACE_HEADER_LENGTH = 1024

#: Extra ``key=value`` fields (e.g. ``Lineage``) kept for propagation, at most this many.
MAX_DATA_FIELDS = 8

SAMPLED = "1"
NOT_SAMPLED = "0"
DECISION_REQUESTED = "?"

_ROOT = re.compile(r"1-[0-9a-f]{8}-[0-9a-f]{24}", re.ASCII)
_PARENT = re.compile(r"[0-9a-f]{16}", re.ASCII)
_DATA_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}", re.ASCII)
_DATA_VALUE = re.compile(r"[A-Za-z0-9_.:+/@-]{1,256}", re.ASCII)
_SAMPLED_VALUES = frozenset({SAMPLED, NOT_SAMPLED, DECISION_REQUESTED})

# ALB adds its own id as "Self=..."; it describes the load balancer's hop, not ours.
_IGNORED_KEYS = frozenset({"Self"})


@dataclass(frozen=True)
class TraceHeader:
    """The fields of a well-formed ``X-Amzn-Trace-Id`` header."""

    root: str | None = None
    parent: str | None = None
    sampled: str | None = None
    data: tuple[tuple[str, str], ...] = ()

    @property
    def decision(self) -> bool | None:
        """The upstream sampling decision, or ``None`` when there is none (absent or ``?``)."""
        if self.sampled == SAMPLED:
            return True
        if self.sampled == NOT_SAMPLED:
            return False
        return None


def parse_trace_header(value: str | None) -> TraceHeader | None:
    """Parse an incoming header; ``None`` when it is absent or malformed in any known field.

    A valid header has a ``Root`` of the form ``1-<8 hex>-<24 hex>``, an optional ``Parent`` of 16 hex
    digits (only with a ``Root``) and an optional ``Sampled`` of ``0``, ``1`` or ``?``. Unknown fields with
    safe names and values are kept for propagation; unsafe ones are dropped.
    """
    if not value or len(value) > MAX_TRACE_HEADER_LENGTH:
        return None
    fields: dict[str, str] = {}
    data: list[tuple[str, str]] = []
    for part in value.split(";"):
        part = part.strip()
        if not part:
            continue
        key, sep, item = part.partition("=")
        if not sep:
            return None
        if key in ("Root", "Parent", "Sampled"):
            if key in fields:
                return None
            fields[key] = item
        elif (
            key not in _IGNORED_KEYS
            and len(data) < MAX_DATA_FIELDS
            and _DATA_KEY.fullmatch(key)
            and _DATA_VALUE.fullmatch(item)
        ):
            data.append((key, item))
    root = fields.get("Root")
    parent = fields.get("Parent")
    sampled = fields.get("Sampled")
    if root is not None and _ROOT.fullmatch(root) is None:
        return None
    if parent is not None and (root is None or _PARENT.fullmatch(parent) is None):
        return None
    if sampled is not None and sampled not in _SAMPLED_VALUES:
        return None
    if root is None and sampled is None:
        return None
    return TraceHeader(root=root, parent=parent, sampled=sampled, data=tuple(data))


def new_trace_id() -> str:
    """A fresh X-Ray trace id: version 1, the epoch seconds in hex, 96 random bits."""
    return f"1-{int(time.time()):08x}-{os.urandom(12).hex()}"


def response_header(trace_id: str, sampled: bool, decision_requested: bool) -> str:
    """The value returned in the response: the trace id, and the decision when the caller asked (``?``)."""
    if decision_requested:
        return f"Root={trace_id};Sampled={SAMPLED if sampled else NOT_SAMPLED}"
    return f"Root={trace_id}"
