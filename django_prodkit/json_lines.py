"""JSON encoding for log lines: a strict encoder built once, the lenient fallback, and cached timestamps."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

_MAX_DEPTH = 8


def json_default(value: Any) -> str:
    """What a value JSON has no type for becomes: its ``str``."""
    return str(value)


def _strict_encoder() -> Callable[[Any], str]:
    # json.dumps with options builds an encoder, its closures and its C encoder on every call, about a third
    # of a log line's formatting. The C encoder is made once here. Without cycle markers a cycle ends in a
    # RecursionError, which callers treat like any other refused value.
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is None:  # a Python without the _json accelerator
        return json.JSONEncoder(default=json_default, ensure_ascii=False, allow_nan=False).encode
    encode = make_encoder(None, json_default, json.encoder.encode_basestring, None, ": ", ", ", False, False, False)

    def encode_strict(value: Any) -> str:
        return "".join(encode(value, 0))

    return encode_strict


#: ``json.dumps(value, default=str, ensure_ascii=False, allow_nan=False)``: raises ``TypeError``, ``ValueError``
#: or ``RecursionError`` for non-string keys JSON cannot convert, NaN or infinity, and cycles.
encode_strict: Callable[[Any], str] = _strict_encoder()


def _jsonable(value: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        return repr(value)
    if isinstance(value, dict):
        return {str(key): _jsonable(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, depth + 1) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def encode_lenient(value: Any) -> str:
    """``value`` as JSON with string keys, NaN and infinity as strings, and depth bounded: never raises."""
    return json.dumps(_jsonable(value, 0), default=json_default, ensure_ascii=False)


class SecondClock:
    """ISO 8601 UTC timestamps with milliseconds; the date and the time of day are formatted once a second."""

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")

    def timestamp(self, created: float) -> str:
        """``created`` (seconds since the epoch) as ``2026-01-31T12:34:56.789+00:00``."""
        second = int(created)
        cached = self._second
        if cached[0] != second:
            # One tuple replaced whole: a thread never sees one second's number with another second's text.
            cached = (second, datetime.fromtimestamp(second, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"))
            self._second = cached
        return "%s.%03d+00:00" % (cached[1], (created - second) * 1000)  # noqa: UP031 - %d truncates, faster than an f-string's int()
