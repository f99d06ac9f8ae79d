"""The HTTP/1.1 client of a virtual user: one keep-alive connection at a time, driven by protocol callbacks."""

from __future__ import annotations

import asyncio
import ssl
from time import perf_counter
from typing import TYPE_CHECKING, cast

from django_prodkit.loadtest.config import USER_AGENT, LoadTestConfig
from django_prodkit.loadtest.parser import ParseError, ResponseParser, make_parser

if TYPE_CHECKING:
    from django_prodkit.loadtest.engine import Engine

ERROR_TIMEOUT = "timeout"
ERROR_REFUSED = "connection_refused"
ERROR_RESET = "connection_reset"
ERROR_CLOSED = "connection_closed"
ERROR_CONNECT = "connect_error"
ERROR_TLS = "tls_error"
ERROR_INVALID = "invalid_response"
# RFC 9110 9.2.2: these may be sent again when a reused keep-alive connection turns out to be closed.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
DEFAULT_HEADERS = (("Host", ""), ("User-Agent", USER_AGENT), ("Accept", "*/*"))


def build_request(config: LoadTestConfig, path: str) -> bytes:
    """The bytes of one request, built once per path and written as they are for every request."""
    given = {name.lower() for name, _ in config.headers}
    defaults = [(name, value or config.target.host_header) for name, value in DEFAULT_HEADERS]
    headers = [(name, value) for name, value in defaults if name.lower() not in given]
    headers.extend(config.headers)
    if (config.body or config.method in ("POST", "PUT", "PATCH")) and "content-length" not in given:
        headers.append(("Content-Length", str(len(config.body))))
    head = f"{config.method} {config.target.base_path}{path} HTTP/1.1\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    return (head + "\r\n").encode() + config.body


def connect_error_kind(exc: BaseException) -> str:
    """The error kind a failed connection attempt is counted as."""
    if isinstance(exc, asyncio.TimeoutError):
        return ERROR_TIMEOUT
    if isinstance(exc, ConnectionRefusedError):
        return ERROR_REFUSED
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        return ERROR_TLS
    return ERROR_CONNECT


class Connection(asyncio.Protocol):
    """One TCP (or TLS) connection of a user; forwards parsed responses and closure to it."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.transport: asyncio.Transport | None = None
        self.parser: ResponseParser = make_parser(self.on_response, head=user.engine.head)
        self.reused = False
        self.received = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """asyncio callback: connected."""
        # uvloop's transports implement the interface without subclassing asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        self.user.engine.open_connections += 1

    def data_received(self, data: bytes) -> None:
        """asyncio callback: bytes from the server."""
        self.received = True
        self.user.engine.recorder.bytes_received += len(data)
        try:
            self.parser.feed(data)
        except ParseError:
            self.user.on_broken(self, ERROR_INVALID)

    def on_response(self, status: int, keep_alive: bool) -> None:
        """Parser callback: a whole response arrived."""
        self.reused = True
        self.received = False
        self.user.on_response(self, status, keep_alive)

    def connection_lost(self, exc: Exception | None) -> None:
        """asyncio callback: the connection is gone."""
        self.user.engine.open_connections -= 1
        self.user.on_connection_lost(self, exc)
        self.transport = None

    def close(self) -> None:
        """Close the connection now, dropping anything unsent."""
        if self.transport is not None:
            self.transport.abort()


class User:
    """A virtual user: sends the requests it is given one after another over a keep-alive connection."""

    def __init__(self, engine: Engine, index: int) -> None:
        self.engine = engine
        self.index = index
        self.conn: Connection | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.in_flight = False
        self.retried = False
        self.scheduled_at = 0.0
        self.sent_at = 0.0
        self.path = 0
        self.remaining = 0
        self.sequence = 0

    def dispatch(self, scheduled_at: float | None, path: int) -> None:
        """Start a request; latency counts from ``scheduled_at`` (open loop) or from now (closed loop)."""
        now = perf_counter()
        self.scheduled_at = now if scheduled_at is None else scheduled_at
        self.sent_at = now
        self.path = path
        self.in_flight = True
        self.retried = False
        self._send()

    def _send(self) -> None:
        conn = self.conn
        if conn is None or conn.transport is None or conn.transport.is_closing():
            self.connecting = self.engine.loop.create_task(self._connect_and_send())
        else:
            conn.transport.write(self.engine.requests[self.path])

    async def _connect_and_send(self) -> None:
        engine = self.engine
        conn = self.conn = Connection(self)
        remaining = engine.config.timeout - (perf_counter() - self.sent_at)
        try:
            await asyncio.wait_for(engine.connect(lambda: conn), max(remaining, 0.001))
        except asyncio.CancelledError:
            conn.close()
            raise
        except (OSError, asyncio.TimeoutError) as exc:
            self.connecting = None
            if self.conn is conn:
                self.conn = None
                self._fail(connect_error_kind(exc))
            return
        self.connecting = None
        if self.conn is conn and self.in_flight and conn.transport is not None:
            conn.transport.write(engine.requests[self.path])

    def on_response(self, conn: Connection, status: int, keep_alive: bool) -> None:
        """A response completed on ``conn``: record it, then go on with the next request."""
        if conn is not self.conn or not self.in_flight:
            return
        now = perf_counter()
        recorder = self.engine.recorder
        recorder.latencies.append(now - self.scheduled_at)
        recorder.ends.append(now)
        statuses = recorder.statuses
        statuses[status] = statuses.get(status, 0) + 1
        if status not in self.engine.success_statuses:
            recorder.failure_ends.append(now)
        self.in_flight = False
        if not keep_alive:
            self.conn = None
            conn.close()
        self.engine.on_user_free(self)

    def on_broken(self, conn: Connection, kind: str) -> None:
        """The server sent garbage on ``conn``."""
        if conn is self.conn:
            self.conn = None
            conn.close()
            if self.in_flight:
                self._fail(kind)

    def on_connection_lost(self, conn: Connection, exc: Exception | None) -> None:
        """``conn`` closed: a body read until EOF ends, a reused connection is retried once, else an error."""
        if conn is not self.conn:
            return
        if self.in_flight and conn.parser.feed_eof():
            return
        self.conn = None
        if not self.in_flight:
            return
        if conn.reused and not conn.received and not self.retried and self.engine.config.method in IDEMPOTENT_METHODS:
            self.retried = True
            self._send()
            return
        self._fail(ERROR_RESET if isinstance(exc, ConnectionResetError) else ERROR_CLOSED)

    def on_timeout(self) -> None:
        """The request in flight took longer than the timeout."""
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()
        self._fail(ERROR_TIMEOUT)

    def stop(self) -> None:
        """Abandon the request in flight (the run was interrupted) and close the connection."""
        self.in_flight = False
        if self.connecting is not None:
            self.connecting.cancel()
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()

    def _fail(self, kind: str) -> None:
        self.in_flight = False
        self.engine.recorder.record_error(kind, perf_counter())
        self.engine.on_user_free(self)
