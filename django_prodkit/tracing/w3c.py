"""W3C ``traceparent`` parsing and formatting, and its mapping to X-Ray ids (no tracing SDK imported here).

An X-Ray trace id ``1-5759e988-bd862e3fe1be46a994272793`` is the W3C trace id
``5759e988bd862e3fe1be46a994272793`` with a version and dashes; X-Ray accepts any W3C id in that form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The W3C Trace Context headers (lower case, as HTTP/2 sends them and carriers store them).
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

#: The headers as they appear in ``request.META``.
TRACEPARENT_META = "HTTP_TRACEPARENT"
TRACESTATE_META = "HTTP_TRACESTATE"

#: Longer values are ignored whole (the spec's traceparent is 55 characters; tracestate at most 512).
MAX_TRACESTATE_LENGTH = 512

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.ASCII)
_INVALID_TRACE = "0" * 32
_INVALID_SPAN = "0" * 16


@dataclass(frozen=True)
class TraceParent:
    """The fields of a valid ``traceparent``."""

    trace_id: str
    span_id: str
    sampled: bool


def parse_traceparent(value: str | None) -> TraceParent | None:
    """Parse a ``traceparent`` header; ``None`` when absent or malformed (the spec's rules, version ``ff`` refused)."""
    if not value or len(value) > MAX_TRACESTATE_LENGTH:
        return None
    match = _TRACEPARENT.fullmatch(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _INVALID_TRACE or span_id == _INVALID_SPAN:
        return None
    return TraceParent(trace_id, span_id, bool(int(flags, 16) & 1))


def format_traceparent(trace_id: str, span_id: str, sampled: bool) -> str:
    """A version-00 ``traceparent`` value."""
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def xray_to_w3c(trace_id: str) -> str:
    """``1-5759e988-bd862e3fe1be46a994272793`` -> ``5759e988bd862e3fe1be46a994272793``."""
    return trace_id[2:10] + trace_id[11:]


def w3c_to_xray(trace_id: str) -> str:
    """``5759e988bd862e3fe1be46a994272793`` -> ``1-5759e988-bd862e3fe1be46a994272793``."""
    return f"1-{trace_id[:8]}-{trace_id[8:]}"
