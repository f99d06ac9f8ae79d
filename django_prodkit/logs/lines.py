"""JSON encoding for log lines: a strict encoder built once, orjson's when asked, the lenient fallback, timestamps."""

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
    portable = json.JSONEncoder(default=json_default, ensure_ascii=False, allow_nan=False).encode
    make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if make_encoder is None:  # a Python without the _json accelerator
        return portable
    try:
        encode = make_encoder(None, json_default, json.encoder.encode_basestring, None, ": ", ", ", False, False, False)
    except TypeError:  # json.encoder's internal signature changed: keep the public, slower way
        return portable

    def encode_strict(value: Any) -> str:
        return "".join(encode(value, 0))

    return encode_strict


#: ``json.dumps(value, default=str, ensure_ascii=False, allow_nan=False)``: raises ``TypeError``, ``ValueError``
#: or ``RecursionError`` for non-string keys JSON cannot convert, NaN or infinity, and cycles.
encode_strict: Callable[[Any], str] = _strict_encoder()


#: The names ``line_encoder`` accepts: orjson when installed, always the standard library's, always orjson.
JSON_ENCODERS = ("auto", "json", "orjson")

# Values orjson writes exactly as the standard library's encoder does; any other value (NaN and infinity, which
# orjson would write as null, containers, objects left to ``str``) sends the whole line to the standard library.
_PLAIN_TYPES = frozenset({str, int, bool, type(None)})


def line_encoder(name: str = "auto") -> Callable[[dict[str, Any]], str]:
    """The strict encoder of a line's fields: orjson for plain values (``auto``: when installed), else the stdlib.

    Both raise what :data:`encode_strict` raises; lines from orjson have no spaces after ``:`` and ``,``.
    """
    if name not in JSON_ENCODERS:
        raise ValueError(f"json_encoder={name!r}: use one of {', '.join(JSON_ENCODERS)}.")
    if name == "json":
        return encode_strict
    try:
        import orjson
    except ImportError:
        if name == "orjson":
            raise ImportError("json_encoder='orjson' needs orjson: pip install 'django-prodkit[orjson]'") from None
        return encode_strict
    dumps = orjson.dumps

    def encode_orjson(payload: dict[str, Any]) -> str:
        for value in payload.values():
            kind = type(value)
            # value - value is 0.0 for a finite float, NaN for NaN and infinity.
            if kind not in _PLAIN_TYPES and not (kind is float and value - value == 0.0):
                return encode_strict(payload)
        return dumps(payload).decode()

    return encode_orjson


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
