"""Small HTTP servers on 127.0.0.1 for the load-test tests: each counts what it really received."""

from __future__ import annotations

import random
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class CountingServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 server with keep-alive; ``mode`` picks its behaviour."""

    daemon_threads = True

    def __init__(
        self,
        mode: str = "ok",
        delay: float = 0.0,
        status: int = 200,
        close_every: int = 3,
        tls: ssl.SSLContext | None = None,
        slow_first: int = 0,
    ) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "http" if tls is None else "https"
        self.mode = mode
        self.delay = delay
        self.status = status
        self.close_every = close_every
        self.slow_first = slow_first
        self.count = 0
        self.paths: dict[str, int] = {}
        self.arrivals: list[float] = []
        self.lock = threading.Lock()
        self.serialize = threading.Lock()
        self.release = threading.Event()
        self.random = random.Random(0)
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> CountingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.release.set()
        self.shutdown()
        self._thread.join()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Head and body in one segment: with two small writes Nagle's algorithm would add 40 ms to each response.
    wbufsize = -1
    server: CountingServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.served = 0

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.count += 1
            number = server.count
            server.paths[self.path] = server.paths.get(self.path, 0) + 1
            server.arrivals.append(time.perf_counter())
        self.served += 1
        if number <= server.slow_first:
            # The first requests (a warm-up's) are slow, the rest fast: a cold cache, a JIT, a lazy import.
            time.sleep(server.delay)
        if server.mode == "redirect":
            # What SECURE_SSL_REDIRECT does to a plain-http request: the same URL over https.
            self.send_response(301)
            self.send_header("Location", f"https://127.0.0.1:{server.server_address[1]}{self.path}?next=secret")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if server.mode == "chaos":
            # Per request, at random: answer, close silently after answering, reset, or stall past the timeout.
            action = server.random.choice(("ok", "ok", "close", "reset", "stall"))
            if action == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                return
            if action == "stall":
                server.release.wait(server.delay)
                self.close_connection = True
                return
            self.send_response(200)
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"ok\n")
            self.close_connection = action == "close"
            return
        if server.mode == "hang":
            server.release.wait(10)
            self.close_connection = True
            return
        if server.mode == "delay":
            # Every request takes this long, however many run at once: throughput grows with concurrency.
            time.sleep(server.delay)
        if server.mode == "slow":
            # One request at a time, however many connections: a server with a fixed capacity.
            with server.serialize:
                time.sleep(server.delay)
        body = b"ok\n"
        self.send_response(server.status)
        if server.mode == "eof":
            # No framing at all: the body ends when the connection does.
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(body)))
        closing = server.mode in ("close", "close-header") and self.served % server.close_every == 0
        if closing and server.mode == "close-header":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        if closing:
            # Without the header the client only learns of it when it reuses the connection.
            self.close_connection = True

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.do_GET()


@contextmanager
def serving(mode: str = "ok", **kwargs: Any) -> Iterator[CountingServer]:
    """A running server for the length of a with block."""
    with CountingServer(mode, **kwargs) as server:
        yield server
