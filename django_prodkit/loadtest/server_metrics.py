"""``--server-metrics URL``: the site's own request counts and duration buckets, read from its metrics endpoint.

The endpoint (``django_prodkit.urls``' ``metrics/``) is read in the Prometheus text format: its counters and histogram
buckets subtract exactly, so "after minus before" is what the server counted during the run, whatever ran before
it; its JSON document (percentiles since the start) is read once for its warning, which says when the counts are
one worker's rather than the whole server's. The token comes from an environment variable, never from the command
line, and appears in no output.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from django_prodkit.loadtest.config import USER_AGENT, ConfigError

TOKEN_ENV = "PRODKIT_LOADTEST_METRICS_TOKEN"  # noqa: S105 - the name of the variable, not a token
REQUESTS_METRIC = "prodkit_http_requests"
DURATION_METRIC = "prodkit_http_request_duration_seconds"
PROMETHEUS_ACCEPT = "text/plain;version=0.0.4"
READ_TIMEOUT = 10.0
MAX_BODY = 16 * 1024 * 1024

Endpoint = tuple[str, str]  # (method, route)


class ServerMetricsError(Exception):
    """The metrics endpoint could not be read; the message never holds the token."""


@dataclass
class Reading:
    """Cumulative counts and duration buckets per (method, route) at one moment."""

    counts: dict[Endpoint, float] = field(default_factory=dict)
    buckets: dict[Endpoint, dict[float, float]] = field(default_factory=dict)
    warning: str | None = None

    def to_json(self) -> dict[str, Any]:
        """As JSON data (kept in segment reports so ``--merge`` can compare the whole run)."""
        return {
            "counts": [[m, r, c] for (m, r), c in sorted(self.counts.items())],
            "buckets": [[m, r, sorted(b.items())] for (m, r), b in sorted(self.buckets.items())],
            "warning": self.warning,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reading:
        """Read what :meth:`to_json` wrote; ValueError when it is not such a reading."""
        counts = {(str(m), str(r)): _count(c) for m, r, c in data["counts"]}
        buckets = {(str(m), str(r)): {float(le): _count(c) for le, c in b} for m, r, b in data["buckets"]}
        warning = data.get("warning")
        return cls(counts, buckets, None if warning is None else str(warning))


def _count(value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 2**53:
        raise ValueError(f"expected a count, got {str(value)[:40]}")
    return float(value)


def earliest_and_latest(pairs: Sequence[tuple[Reading, Reading]]) -> tuple[Reading, Reading]:
    """The reading before the first share and after the last one: counters only grow, so the smallest and the
    largest of each count are the ones read first and last (shares of a run read the same server)."""
    before, after = Reading(), Reading()
    for first, last in pairs:
        for target, source, pick in ((before, first, min), (after, last, max)):
            for key, count in source.counts.items():
                target.counts[key] = pick(target.counts.get(key, count), count)
            for key, buckets in source.buckets.items():
                mine = target.buckets.setdefault(key, {})
                for le, count in buckets.items():
                    mine[le] = pick(mine.get(le, count), count)
            target.warning = target.warning or source.warning
    return before, after


def check_url(url: str) -> str:
    """The metrics URL: http(s), and no credentials in it (the token goes in the environment variable)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--server-metrics: expected the http(s) URL of the site's metrics endpoint, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"--server-metrics: no credentials in the URL; put the token in {TOKEN_ENV}")
    return url


class MetricsReader:
    """Reads the endpoint with the Bearer token of :data:`TOKEN_ENV` (or the one ``--serve`` made)."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = check_url(url)
        self.token = token if token is not None else os.environ.get(TOKEN_ENV, "")

    def _get(self, accept: str) -> bytes:
        """The body of a GET asking for ``accept``; ServerMetricsError when the answer is not of that type."""
        request = urllib.request.Request(self.url, headers={"Accept": accept, "User-Agent": USER_AGENT})  # noqa: S310
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=READ_TIMEOUT) as response:  # noqa: S310 - http(s) only
                body: bytes = response.read(MAX_BODY + 1)
                content_type = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            hint = f" (is {TOKEN_ENV} set to one of the site's METRICS_TOKENS?)" if exc.code in (401, 403) else ""
            raise ServerMetricsError(f"{self.url} answered {exc.code}{hint}") from None
        except (OSError, ValueError) as exc:
            raise ServerMetricsError(f"cannot read {self.url}: {getattr(exc, 'reason', None) or exc}") from None
        if len(body) > MAX_BODY:
            raise ServerMetricsError(f"{self.url}: the answer is larger than {MAX_BODY} bytes")
        if not content_type.startswith(accept.split(";", 1)[0]):
            raise ServerMetricsError(
                f"{self.url} answered {content_type or 'no Content-Type'}: is it the kit's metrics URL?"
            )
        return body

    def read(self, *, with_mode: bool = False) -> Reading:
        """The server's counts now; with ``with_mode`` (the first read) also whether they are the whole server's."""
        reading = parse_exposition(self._get(PROMETHEUS_ACCEPT).decode("utf-8", "replace"))
        # Before the first request there is nothing to count yet; after the run there must be.
        if not with_mode and not reading.counts:
            raise ServerMetricsError(
                f"{self.url}: the server counted no request at all: is django_prodkit.middleware.MetricsMiddleware "
                "in its MIDDLEWARE?"
            )
        if with_mode:
            try:
                document = json.loads(self._get("application/json"))
            except ValueError:
                document = {}
            warning = document.get("warning") if isinstance(document, dict) else None
            reading.warning = str(warning) if warning else None
        return reading


def parse_exposition(text: str) -> Reading:
    """The request counters and duration buckets of a Prometheus text exposition, summed over other labels."""
    reading = Reading()
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = sample.labels
                key = (labels.get("method", ""), labels.get("route", ""))
                if sample.name == REQUESTS_METRIC + "_total":
                    reading.counts[key] = reading.counts.get(key, 0.0) + sample.value
                elif sample.name == DURATION_METRIC + "_bucket":
                    buckets = reading.buckets.setdefault(key, {})
                    le = float(labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + sample.value
    except (ValueError, KeyError, IndexError) as exc:
        raise ServerMetricsError(f"the metrics are not in the Prometheus text format ({exc})") from None
    return reading


def readings_of(data: dict[str, Any] | None) -> tuple[Reading, Reading] | None:
    """The readings a report's ``server_metrics`` part kept, or None."""
    if not data or "before" not in data:
        return None
    return Reading.from_json(data["before"]), Reading.from_json(data["after"])
