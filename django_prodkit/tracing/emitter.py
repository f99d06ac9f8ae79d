"""Sending trace documents to the X-Ray daemon over UDP without ever failing or flooding the log."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("django_prodkit.tracing")

#: The environment variable the X-Ray SDKs and daemon read for the daemon's address.
DAEMON_ADDRESS_ENV = "AWS_XRAY_DAEMON_ADDRESS"
DEFAULT_DAEMON_ADDRESS = "127.0.0.1:2000"

#: The first line of every datagram, exactly as aws-xray-sdk's ``UDPEmitter`` writes it.
PROTOCOL_HEADER = '{"format":"json","version":1}\n'

#: After a failed name lookup, try again this often (a sidecar's DNS name may appear later), silently.
RESOLVE_RETRY_SECONDS = 30.0


@dataclass(frozen=True)
class DaemonAddress:
    """Where the daemon listens: UDP for trace documents, TCP for the sampling-rule API."""

    udp: tuple[str, int]
    tcp: tuple[str, int]


def _host_port(text: str, original: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{DAEMON_ADDRESS_ENV}={original!r} is not a daemon address.")
    return host, int(port)


def parse_daemon_address(raw: str) -> DaemonAddress:
    """Parse ``host:port`` or ``tcp:host:port udp:host:port`` as aws-xray-sdk's ``DaemonConfig`` does."""
    parts = raw.split(" ")
    if len(parts) == 1:
        address = _host_port(parts[0], raw)
        return DaemonAddress(udp=address, tcp=address)
    if len(parts) == 2:
        by_protocol: dict[str, tuple[str, int]] = {}
        for part in parts:
            protocol, sep, rest = part.partition(":")
            if protocol not in ("tcp", "udp") or not sep or protocol in by_protocol:
                raise ValueError(f"{DAEMON_ADDRESS_ENV}={raw!r} is not a daemon address.")
            by_protocol[protocol] = _host_port(rest, raw)
        return DaemonAddress(udp=by_protocol["udp"], tcp=by_protocol["tcp"])
    raise ValueError(f"{DAEMON_ADDRESS_ENV}={raw!r} is not a daemon address.")


def daemon_address_from_env(environ: Mapping[str, str] = os.environ) -> DaemonAddress:
    """The daemon address from :data:`DAEMON_ADDRESS_ENV`, else the SDK's default ``127.0.0.1:2000``."""
    return parse_daemon_address(environ.get(DAEMON_ADDRESS_ENV, DEFAULT_DAEMON_ADDRESS))


class UDPDaemonEmitter:
    """An emitter for aws-xray-sdk's recorder: one datagram per document, errors swallowed.

    The first failure (a name that does not resolve, a send the kernel refuses) is logged once as a
    warning; later ones are silent, so a missing daemon never floods the log or breaks a request.
    """

    def __init__(self, address: tuple[str, int]) -> None:
        self._address = address
        self._socket: socket.socket | None = None
        self._target: Any = None
        self._next_resolve = 0.0
        self._warned = False
        self._lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        """The daemon's UDP ``(host, port)``."""
        return self._address

    def send_entity(self, entity: Any) -> None:
        """Serialise a segment or subsegment and send it (the interface aws-xray-sdk calls)."""
        try:
            payload = (PROTOCOL_HEADER + entity.serialize()).encode("utf-8")
        except Exception:
            self._warn_once("could not serialise a trace segment; it was dropped", exc_info=True)
            return
        self.send(payload)

    def send_document(self, document: str) -> None:
        """Send one segment document already written as JSON text; never raises."""
        self.send((PROTOCOL_HEADER + document).encode("utf-8"))

    def send(self, payload: bytes) -> None:
        """Send one datagram to the daemon; never raises."""
        sock = self._socket
        if sock is None:
            sock = self._connect()
            if sock is None:
                return
        try:
            sock.sendto(payload, self._target)
        except OSError as exc:
            self._warn_once(f"could not send a trace segment to the X-Ray daemon at {self._display()}: {exc}")

    def set_daemon_address(self, address: str | None) -> None:
        """Point the emitter at another ``host:port`` (aws-xray-sdk's emitter interface)."""
        if address:
            with self._lock:
                self._address = parse_daemon_address(address).udp
                self._close_socket()

    def close(self) -> None:
        """Close the socket; a later send opens a new one."""
        with self._lock:
            self._close_socket()

    def _connect(self) -> socket.socket | None:
        with self._lock:
            if self._socket is not None:
                return self._socket
            now = time.monotonic()
            if now < self._next_resolve:
                return None
            host, port = self._address
            try:
                family, kind, proto, _name, target = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
            except (OSError, UnicodeError) as exc:
                self._next_resolve = now + RESOLVE_RETRY_SECONDS
                self._warn_once(
                    f"the X-Ray daemon address {self._display()} does not resolve ({exc}); "
                    "traces are dropped until it does"
                )
                return None
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            self._target = target
            self._socket = sock
            return sock

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _display(self) -> str:
        return f"{self._address[0]}:{self._address[1]}"

    def _warn_once(self, message: str, *, exc_info: bool = False) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(message, exc_info=exc_info)
