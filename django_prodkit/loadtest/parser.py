"""Incremental HTTP/1.1 response parsers: httptools (llhttp) when installed, a pure-Python one otherwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

try:
    import httptools
except ImportError:  # pragma: no cover - exercised by the tox environments without the extra
    httptools = None  # type: ignore[assignment]

OnComplete = Callable[[int, bool], None]
"""Called once per final response with its status code and whether the connection stays open."""

MAX_HEAD_BYTES = 64 * 1024
NO_BODY_STATUSES = frozenset({204, 304})
_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _UNTIL_EOF = range(7)


class ParseError(Exception):
    """The server sent something that is not a valid HTTP/1.x response."""


class ResponseParser(Protocol):
    """What the engine needs from a parser: bytes in, completed responses out through the callback."""

    name: str
    location: bytes
    """The ``Location`` header of the response last completed (empty when it had none)."""

    def feed(self, data: bytes) -> None:
        """Parse more bytes; call the callback for each response they complete."""

    def feed_eof(self) -> bool:
        """The server closed the connection; return whether that completed a response."""


def _is_interim(status: int) -> bool:
    # 1xx responses (100 Continue, 103 Early Hints) precede the real one; 101 ends HTTP/1.1 itself.
    return 100 <= status < 200 and status != 101


class PythonResponseParser:
    """A stdlib-only response parser: Content-Length, chunked, no-body statuses, HEAD and read-until-close bodies."""

    name = "python"

    def __init__(self, on_complete: OnComplete, *, head: bool = False) -> None:
        self._on_complete = on_complete
        self._head = head
        self._buf = bytearray()
        self._state = _HEAD
        self._remaining = 0
        self._status = 0
        self._keep_alive = True
        self.location = b""

    def feed(self, data: bytes) -> None:
        """Parse more bytes; call the callback for each response they complete."""
        self._buf += data
        while self._step():
            pass

    def feed_eof(self) -> bool:
        """The server closed the connection; return whether that completed a response."""
        if self._state == _UNTIL_EOF:
            self._buf.clear()
            self._complete()
            return True
        return False

    def _complete(self) -> None:
        self._state = _HEAD
        self._on_complete(self._status, self._keep_alive)

    def _line(self) -> bytes | None:
        end = self._buf.find(b"\r\n")
        if end < 0:
            if len(self._buf) > MAX_HEAD_BYTES:
                raise ParseError("line too long")
            return None
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    def _step(self) -> bool:
        """Advance the state machine once; return whether it can go on without more bytes."""
        state = self._state
        if state == _HEAD:
            return self._parse_head()
        if state in (_LENGTH, _CHUNK_DATA):
            taken = min(self._remaining, len(self._buf))
            del self._buf[:taken]
            self._remaining -= taken
            if self._remaining:
                return False
            if state == _LENGTH:
                self._complete()
            else:
                self._state = _CHUNK_END
            return True
        if state == _CHUNK_END:
            if len(self._buf) < 2:
                return False
            if self._buf[:2] != b"\r\n":
                raise ParseError("chunk not followed by CRLF")
            del self._buf[:2]
            self._state = _CHUNK_SIZE
            return True
        if state == _UNTIL_EOF:
            self._buf.clear()
            return False
        line = self._line()
        if line is None:
            return False
        if state == _TRAILERS:
            if not line:
                self._complete()
            return True
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ParseError(f"invalid chunk size {size_text!r}") from None
        if size < 0 or size_text.startswith((b"+", b"-")):
            raise ParseError(f"invalid chunk size {size_text!r}")
        self._remaining = size
        self._state = _CHUNK_DATA if size else _TRAILERS
        return True

    def _parse_head(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > MAX_HEAD_BYTES:
                raise ParseError("response head too large")
            return False
        lines = bytes(self._buf[:end]).split(b"\r\n")
        del self._buf[: end + 4]
        version, _, rest = lines[0].partition(b" ")
        status_text = rest[:3]
        if version not in (b"HTTP/1.1", b"HTTP/1.0") or not status_text.isdigit() or rest[3:4] not in (b"", b" "):
            raise ParseError(f"invalid status line {lines[0][:100]!r}")
        status = int(status_text)
        length: int | None = None
        chunked = False
        connection: set[bytes] = set()
        location = b""
        for raw in lines[1:]:
            name, sep, value = raw.partition(b":")
            if not sep or not name or name != name.strip():
                raise ParseError(f"invalid header line {raw[:100]!r}")
            name, value = name.lower(), value.strip()
            if name == b"content-length":
                if not value.isdigit() or (length is not None and length != int(value)):
                    raise ParseError(f"invalid Content-Length {value[:40]!r}")
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = value.lower().rsplit(b",", 1)[-1].strip() == b"chunked"
            elif name == b"connection":
                connection.update(token.strip() for token in value.lower().split(b","))
            elif name == b"location":
                location = value
        if _is_interim(status):
            return True
        self._status = status
        self.location = location
        if version == b"HTTP/1.1":
            self._keep_alive = b"close" not in connection
        else:
            self._keep_alive = b"keep-alive" in connection
        if self._head or status in NO_BODY_STATUSES or status < 200:
            self._complete()
        elif chunked:
            self._state = _CHUNK_SIZE
        elif length is not None:
            self._remaining = length
            self._state = _LENGTH
        else:
            self._keep_alive = False
            self._state = _UNTIL_EOF
        return True


class HttptoolsResponseParser:
    """A response parser on httptools (the llhttp parser of Node.js), used when the extra is installed."""

    name = "httptools"

    def __init__(self, on_complete: OnComplete) -> None:
        assert httptools is not None
        self._on_complete = on_complete
        self._parser: Any = httptools.HttpResponseParser(self)
        self._framed = False
        self._in_body = False
        self._keep_alive = True
        self.location = b""
        self._location = b""

    def feed(self, data: bytes) -> None:
        """Parse more bytes; call the callback for each response they complete."""
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise ParseError(str(exc) or type(exc).__name__) from None

    def feed_eof(self) -> bool:
        """The server closed the connection; return whether that completed a response."""
        # llhttp cannot be told about EOF through httptools, so a body without framing is finished here.
        if self._in_body and not self._framed:
            self._in_body = False
            self.location, self._location = self._location, b""
            self._on_complete(self._parser.get_status_code(), False)
            return True
        return False

    def on_header(self, name: bytes, value: bytes) -> None:
        """httptools callback: note whether the body has explicit framing."""
        if len(name) in (14, 17) and name.lower() in (b"content-length", b"transfer-encoding"):
            self._framed = True
        elif len(name) == 8 and name.lower() == b"location":
            self._location = value

    def on_headers_complete(self) -> None:
        """httptools callback: the head is parsed."""
        self._in_body = True
        self._keep_alive = self._parser.should_keep_alive()

    def on_message_complete(self) -> None:
        """httptools callback: a whole response arrived."""
        self._in_body = self._framed = False
        status = self._parser.get_status_code()
        self.location, self._location = self._location, b""
        if not _is_interim(status):
            self._on_complete(status, self._keep_alive)


def parser_name(*, head: bool = False) -> str:
    """The parser :func:`make_parser` picks."""
    return "httptools" if httptools is not None and not head else "python"


def make_parser(on_complete: OnComplete, *, head: bool = False, prefer: str | None = None) -> ResponseParser:
    """The fastest parser available; HEAD responses always use the Python one (httptools cannot skip their body)."""
    if (prefer or parser_name(head=head)) == "httptools" and not head:
        return HttptoolsResponseParser(on_complete)
    return PythonResponseParser(on_complete, head=head)
