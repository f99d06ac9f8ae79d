"""One health verdict for ``manage.py healthcheck``: the checks run in this process, or a URL probed.

Each returns ``(healthy, line)``: the command prints the line and exits 0 or 1, which is what a container's
``HEALTHCHECK`` or an orchestrator's command probe reads.
"""

from __future__ import annotations

import http.client
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


def probe_url(url: str, *, timeout: float) -> tuple[bool, str]:
    """GET ``url`` (http or https) within ``timeout`` s: healthy on a 200."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False, f"fail: {url!r} is not an http(s) URL"
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.netloc, timeout=timeout)
    start = time.perf_counter()
    try:
        connection.request("GET", urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, "")))
        response = connection.getresponse()
        body = response.read(MAX_BODY_QUOTE)
    except (OSError, http.client.HTTPException) as exc:
        return False, f"fail: {url}: {type(exc).__name__}: {exc}"
    finally:
        connection.close()
    elapsed = (time.perf_counter() - start) * 1000
    if response.status == 200:
        return True, f"ok: {url} answered 200 in {elapsed:.0f} ms"
    quote = body.decode("utf-8", "replace").replace("\n", " ")
    return False, f"fail: {url} answered {response.status} in {elapsed:.0f} ms: {quote}"
