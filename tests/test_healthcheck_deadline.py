"""``manage.py healthcheck --url``: ``--timeout`` bounds the whole probe, and credentials in the URL stay secret."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.test_healthcheck_command import healthcheck

PASSWORD = "s3cr3t-pa55"


class DrippingServer:
    """Accepts connections and answers with one byte of a 200 every ``interval`` seconds, forever."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn:
                self.requests.append(conn.recv(4096))
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000:
                    if self.stop.wait(self.interval):
                        return
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        break

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


@pytest.fixture
def dripping() -> Iterator[DrippingServer]:
    server = DrippingServer(0.2)
    yield server
    server.close()


@pytest.mark.timeout(30)
def test_a_server_that_drips_its_answer_fails_within_the_timeout(dripping: DrippingServer) -> None:
    start = time.monotonic()
    code, out = healthcheck("--url", f"http://127.0.0.1:{dripping.port}/health/", "--timeout", "1")
    elapsed = time.monotonic() - start
    assert code == 1
    assert out.startswith(f"fail: http://127.0.0.1:{dripping.port}/health/: no complete answer within 1 s")
    # A deadline, not a per-read timeout: every byte arrives within 0.2 s, yet the probe gives up.
    assert elapsed < 10


@pytest.mark.timeout(30)
def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_printed(dripping: DrippingServer) -> None:
    code, out = healthcheck(
        "--url", f"http://ops%40site:{PASSWORD}@127.0.0.1:{dripping.port}/health/", "--timeout", "1"
    )
    assert code == 1
    assert PASSWORD not in out
    assert "ops" not in out
    assert out.startswith(f"fail: http://127.0.0.1:{dripping.port}/health/")
    [request] = dripping.requests
    expected = base64.b64encode(f"ops@site:{PASSWORD}".encode()).decode()
    assert f"Authorization: Basic {expected}".encode() in request
    assert b"Host: 127.0.0.1" in request


@pytest.mark.parametrize(
    "url",
    [f"ftp://user:{PASSWORD}@example.com/", f"http://user:{PASSWORD}@/", f"http://user:{PASSWORD}@host:99999/"],
)
def test_a_bad_url_with_credentials_is_refused_without_showing_them(url: str) -> None:
    code, out = healthcheck("--url", url)
    assert code == 1
    assert out.startswith("fail: ")
    assert PASSWORD not in out


def test_an_unresolvable_host_does_not_show_the_password(settings: Any) -> None:
    code, out = healthcheck("--url", f"http://user:{PASSWORD}@does-not-exist.invalid/", "--timeout", "3")
    assert code == 1
    assert PASSWORD not in out
    assert "does-not-exist.invalid" in out
