"""The HTTP/1.1 client of a virtual user: one keep-alive connection at a time, driven by protocol callbacks.

A user is always in exactly one state: ``idle`` (no request), ``connecting`` (a request waits for its
connection, ``task`` is the attempt) or ``in_flight`` (the request is written on ``conn``). Every way a request
ends (response, error, timeout, stop) goes through :meth:`User._finish`, which makes the user idle and hands it
back to the engine; a connection attempt reports through a done-callback that sees every outcome, exceptions of
any type included, and attempts or connections that are no longer the user's current ones are ignored.
"""

from __future__ import annotations

import asyncio
import ssl
from time import perf_counter
from typing import TYPE_CHECKING, cast

from django_prodkit.loadtest.config import USER_AGENT, LoadTestConfig, RequestSpec
from django_prodkit.loadtest.parser import ParseError, ResponseParser, make_parser

if TYPE_CHECKING:
    from django_prodkit.loadtest.engine import Engine

IDLE, CONNECTING, IN_FLIGHT = "idle", "connecting", "in_flight"
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


def build_request(config: LoadTestConfig, spec: RequestSpec) -> bytes:
    """The bytes of one request, built once per request of the mix and written as they are every time."""
    given = {name.lower() for name, _ in spec.headers}
    defaults = [(name, value or config.target.host_header) for name, value in DEFAULT_HEADERS]
    headers = [(name, value) for name, value in defaults if name.lower() not in given]
    headers.extend(spec.headers)
    if (spec.body or spec.method in ("POST", "PUT", "PATCH")) and "content-length" not in given:
        headers.append(("Content-Length", str(len(spec.body))))
    head = f"{spec.method} {config.target.base_path}{spec.path} HTTP/1.1\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    return (head + "\r\n").encode() + spec.body


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

    def __init__(self, user: User, head: bool) -> None:
        self.user = user
        self.transport: asyncio.Transport | None = None
        self.parser: ResponseParser = make_parser(self.on_response, head=head)
        self.reused = False
        self.received = False
        self.lost = False

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
            self.user.on_broken(self)

    def on_response(self, status: int, keep_alive: bool) -> None:
        """Parser callback: a whole response arrived."""
        self.reused = True
        self.received = False
        self.user.on_response(self, status, keep_alive)

    def connection_lost(self, exc: Exception | None) -> None:
        """asyncio callback: the connection is gone."""
        self.lost = True
        if self.transport is not None:
            self.user.engine.open_connections -= 1
        self.user.on_connection_lost(self, exc)
        self.transport = None

    @property
    def usable(self) -> bool:
        """Open and not closing: a request can be written on it."""
        return not self.lost and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        """Close the connection now, dropping anything unsent."""
        if self.transport is not None:
            self.transport.abort()


class User:
    """A virtual user: sends the requests it is given one after another over a keep-alive connection."""

    def __init__(self, engine: Engine, index: int) -> None:
        self.engine = engine
        self.index = index
        self.state = IDLE
        self.conn: Connection | None = None
        self.task: asyncio.Task[Connection] | None = None
        self.retried = False
        self.scheduled_at = 0.0
        self.deadline = 0.0
        self.request = 0
        self.remaining = 0
        self.sequence = 0

    def dispatch(self, scheduled_at: float | None, request: int) -> None:
        """Start a request; latency and timeout count from ``scheduled_at`` (open loop) or from now."""
        assert self.state == IDLE, f"user {self.index} given a request while {self.state}"
        now = perf_counter()
        # A timer may fire a little early: a request never starts before it is sent.
        self.scheduled_at = now if scheduled_at is None else min(scheduled_at, now)
        self.deadline = self.scheduled_at + self.engine.config.timeout
        self.request = request
        self.retried = False
        self._send()

    def _send(self) -> None:
        conn = self.conn
        if conn is not None and conn.usable:
            assert conn.transport is not None
            self.state = IN_FLIGHT
            conn.transport.write(self.engine.payloads[self.request])
            return
        self._drop_connection()
        self.state = CONNECTING
        conn = Connection(self, self.engine.head)
        remaining = max(self.deadline - perf_counter(), 0.001)
        self.task = self.engine.loop.create_task(self._open(conn, remaining))
        self.task.add_done_callback(self._on_connected)

    async def _open(self, conn: Connection, timeout: float) -> Connection:
        try:
            await asyncio.wait_for(self.engine.connect(lambda: conn), timeout)
        except BaseException:
            conn.close()
            raise
        return conn

    def _on_connected(self, task: asyncio.Task[Connection]) -> None:
        if task is not self.task:
            # An attempt the user gave up on (timeout, stop): its connection, if any, is nobody's.
            if not task.cancelled() and task.exception() is None:
                task.result().close()
            return
        self.task = None
        if task.cancelled():
            # Not our doing (we drop the task before cancelling it): uvloop reports a connect that libuv cancelled
            # as a CancelledError from create_connection.
            self._finish_error(ERROR_CONNECT)
            return
        exc = task.exception()
        if exc is not None:
            self._finish_error(connect_error_kind(exc))
            return
        conn = task.result()
        if not conn.usable:
            self._finish_error(ERROR_CLOSED)
            return
        self.conn = conn
        self._send()

    def on_response(self, conn: Connection, status: int, keep_alive: bool) -> None:
        """A response completed on ``conn``: record it, then go on with the next request."""
        if conn is not self.conn or self.state != IN_FLIGHT:
            return
        now = perf_counter()
        recorder = self.engine.recorder
        recorder.record_response(self.request, status, now - self.scheduled_at, now)
        if 300 <= status < 400:
            recorder.record_redirect(self.request, conn.parser.location)
        if not keep_alive:
            self._drop_connection()
        self._finish()

    def on_broken(self, conn: Connection) -> None:
        """The server sent something that is not HTTP on ``conn``."""
        if conn is self.conn:
            self._drop_connection()
            if self.state == IN_FLIGHT:
                self._finish_error(ERROR_INVALID)

    def on_connection_lost(self, conn: Connection, exc: Exception | None) -> None:
        """``conn`` closed: a body read until EOF ends, a reused connection is retried once, else an error."""
        if conn is not self.conn:
            return
        if self.state == IN_FLIGHT and conn.parser.feed_eof():
            return
        self.conn = None
        if self.state != IN_FLIGHT:
            return
        spec_method = self.engine.config.specs[self.request].method
        if conn.reused and not conn.received and not self.retried and spec_method in IDEMPOTENT_METHODS:
            self.retried = True
            self._send()
            return
        self._finish_error(ERROR_RESET if isinstance(exc, ConnectionResetError) else ERROR_CLOSED)

    def expire(self, now: float) -> None:
        """Called by the watchdog: end a request that has passed its deadline, connecting or in flight."""
        if self.state != IDLE and now > self.deadline:
            self._abandon()
            self._finish_error(ERROR_TIMEOUT)

    def stop(self) -> None:
        """Abandon the request (the run was stopped) and close the connection; the user ends idle."""
        self._abandon()
        self._drop_connection()
        self.state = IDLE

    def _abandon(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
        if self.state == IN_FLIGHT:
            self._drop_connection()

    def _drop_connection(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()

    def _finish_error(self, kind: str) -> None:
        self.engine.recorder.record_error(self.request, kind, perf_counter())
        self._finish()

    def _finish(self) -> None:
        self.state = IDLE
        self.engine.on_user_free(self)
