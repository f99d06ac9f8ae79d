"""One health verdict for ``manage.py healthcheck``: the checks run in this process, or a URL probed.

Each returns ``(healthy, line)``: the command prints the line and exits 0 or 1, which is what a container's
``HEALTHCHECK`` or an orchestrator's command probe reads.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import threading
import time
import urllib.parse

from django.urls import NoReverseMatch, reverse

from django_prodkit.health import endpoints, probes

#: The URL names the probe appends to a bare ``--url`` (scheme, host and port only).
LIVENESS_URL_NAME, READINESS_URL_NAME = endpoints.HEALTH_URL_NAMES

#: The longest part of a response body quoted in the line when a URL probe fails.
MAX_BODY_QUOTE = 200


def in_process(*, ready: bool, timeout: float) -> tuple[bool, str]:
    """Readiness: run the configured checks here, within ``timeout`` s. Liveness: the project loaded, so yes."""
    if not ready:
        return True, "ok: live (settings and apps loaded)"
    report = probes.run_checks(probes.configured_checks(), timeout)
    timings = ", ".join(f"{result.name} {result.duration_ms:.0f} ms" for result in report.results)
    if report.ok:
        return True, f"ok: ready ({timings or 'no checks configured'})"
    failures = "; ".join(f"{result.name}: {result.error}" for result in report.results if not result.ok)
    return False, f"fail: not ready: {failures}"


def endpoint_url(url: str, *, ready: bool) -> str:
    """``url`` itself, or with the health endpoint's path when it names only a server (``http://host:port``)."""
    parts = urllib.parse.urlsplit(url)
    if parts.path not in ("", "/"):
        return url
    try:
        path = reverse(READINESS_URL_NAME if ready else LIVENESS_URL_NAME)
    except NoReverseMatch:
        path = "/"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def redacted(url: str) -> str:
    """``url`` without the ``user:password@`` part, for printing."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _authorization(parts: urllib.parse.SplitResult) -> dict[str, str]:
    if parts.username is None and parts.password is None:
        return {}
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


class _Probe:
    """One GET in a thread of its own, so ``timeout`` bounds the whole of it: DNS, connect, a dripping answer."""

    def __init__(self, parts: urllib.parse.SplitResult, timeout: float) -> None:
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        host = parts.hostname or ""
        self.connection = connection_class(f"[{host}]" if ":" in host else host, parts.port, timeout=timeout)
        self.target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        self.headers = _authorization(parts)
        self.outcome: tuple[int, bytes] | BaseException | None = None

    def run(self) -> None:
        try:
            self.connection.request("GET", self.target, headers=self.headers)
            response = self.connection.getresponse()
            self.outcome = (response.status, response.read(MAX_BODY_QUOTE))
        except BaseException as exc:  # reported by the caller, whatever it is
            self.outcome = exc

    def abort(self) -> None:
        # Unblocks a read still waiting on the socket; the daemon thread then ends on its own.
        sock = self.connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.connection.close()


def probe_url(url: str, *, timeout: float) -> tuple[bool, str]:
    """GET ``url`` (http or https), all of it within ``timeout`` s: healthy on a 200.

    ``user:password@`` in the URL is sent as HTTP basic auth and never printed.
    """
    shown = redacted(url)
    try:
        parts = urllib.parse.urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError as exc:
        return False, f"fail: {shown!r} is not a valid URL: {str(exc).replace(url, shown)}"
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        return False, f"fail: {shown!r} is not an http(s) URL"
    probe = _Probe(parts, timeout)
    start = time.perf_counter()
    thread = threading.Thread(target=probe.run, name="prodkit-healthcheck", daemon=True)
    thread.start()
    thread.join(timeout)
    elapsed = (time.perf_counter() - start) * 1000
    if thread.is_alive():
        probe.abort()
        return False, f"fail: {shown}: no complete answer within {timeout:g} s"
    probe.connection.close()
    outcome = probe.outcome
    if not isinstance(outcome, tuple):
        return False, f"fail: {shown}: {type(outcome).__name__}: {outcome}"
    status, body = outcome
    if status == 200:
        return True, f"ok: {shown} answered 200 in {elapsed:.0f} ms"
    quote = body.decode("utf-8", "replace").replace("\n", " ")
    return False, f"fail: {shown} answered {status} in {elapsed:.0f} ms: {quote}"
