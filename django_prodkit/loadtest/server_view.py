"""``--server-metrics URL``: the server's own count and latency per route, read before and after the run.

The site's metrics endpoint (``django_prodkit.urls``' ``metrics/``) is read in the Prometheus text format: its
counters and histogram buckets subtract exactly, so "after minus before" is what the server counted during the
run, whatever ran before it; its JSON document (percentiles since the start) is read once for its ``mode``, which
says whether the counts are the whole server's or one worker's. The token comes from an environment variable,
never from the command line, and appears in no output.
"""

from __future__ import annotations

import json
import math
import os
import re
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from django_prodkit.loadtest.config import USER_AGENT, ConfigError, LoadTestConfig, RequestSpec
from django_prodkit.loadtest.histogram import Histogram, nearest_rank
from django_prodkit.loadtest.outcome import RunResult
from django_prodkit.loadtest.results import ERROR_DROPPED, Results
from django_prodkit.loadtest.thresholds import latency_figure

TOKEN_ENV = "PRODKIT_LOADTEST_METRICS_TOKEN"  # noqa: S105 - the name of the variable, not a token
REQUESTS_METRIC = "prodkit_http_requests"
DURATION_METRIC = "prodkit_http_request_duration_seconds"
UNMATCHED_ROUTE = "<unmatched>"
PROMETHEUS_ACCEPT = "text/plain;version=0.0.4"
READ_TIMEOUT = 10.0
MAX_BODY = 16 * 1024 * 1024
PERCENTILES = ("p50", "p95", "p99")
# Django's path converters; any other converter matches one path segment.
CONVERTERS = {"int": "[0-9]+", "slug": "[-a-zA-Z0-9_]+", "uuid": "[0-9a-f-]{36}", "path": ".+", "str": "[^/]+"}
CONVERTER_RE = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")

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


def route_pattern(route: str) -> re.Pattern[str] | None:
    """A regular expression for the paths a route label stands for (``/posts/<slug:slug>/``), or None."""
    if route == UNMATCHED_ROUTE:
        return None
    try:
        if "(?" in route or "^" in route or "$" in route:  # a re_path() route, with the prefixes of its includes
            return re.compile(route.replace("^", "").replace("$", ""))
        parts, position = [], 0
        for match in CONVERTER_RE.finditer(route):
            parts.append(re.escape(route[position : match.start()]))
            parts.append(f"(?:{CONVERTERS.get(match.group('conv') or 'str', '[^/]+')})")
            position = match.end()
        parts.append(re.escape(route[position:]))
        return re.compile("".join(parts))
    except re.error:
        return None


def route_of_path(path: str, routes: Sequence[str]) -> str:
    """The route a request path is served by (the most specific of those that match), else ``<unmatched>``."""
    path = path.split("?", 1)[0]
    matching = [route for route in routes if (pattern := route_pattern(route)) and pattern.fullmatch(path)]
    # A literal route beats one with converters; then the longer one.
    return max(matching, key=lambda r: ("<" not in r, len(r)), default=UNMATCHED_ROUTE)


def server_percentile(buckets: dict[float, float], pct: float) -> float | None:
    """A nearest-rank percentile in ms from cumulative buckets: the geometric middle of the bucket holding it."""
    ordered = sorted(buckets.items())
    total = ordered[-1][1] if ordered else 0.0
    if total <= 0:
        return None
    rank = nearest_rank(pct, int(total))
    lower = 0.0
    for upper, cumulative in ordered:
        if cumulative >= rank:
            value = lower if math.isinf(upper) else (upper if lower <= 0 else math.sqrt(lower * upper))
            return round(value * 1000.0, 3)
        lower = upper
    return round(lower * 1000.0, 3)


def _difference(before: Reading, after: Reading) -> tuple[dict[Endpoint, int], dict[Endpoint, dict[float, float]]]:
    counts = {key: round(after.counts[key] - before.counts.get(key, 0.0)) for key in after.counts}
    buckets = {
        key: {le: value - before.buckets.get(key, {}).get(le, 0.0) for le, value in mine.items()}
        for key, mine in after.buckets.items()
    }
    return {key: count for key, count in counts.items() if count}, buckets


def compare(config: LoadTestConfig, results: Results, before: Reading, after: Reading) -> dict[str, Any]:
    """Per route: what the client sent and had answered beside what the server counted, both sides' percentiles,
    and the mismatches, as JSON data (the ``server_metrics`` part of the report)."""
    counted, buckets = _difference(before, after)
    routes = sorted({route for _, route in (*after.counts, *after.buckets)})
    groups: dict[Endpoint, list[RequestSpec]] = {}
    for spec in config.specs:
        path = config.target.base_path + spec.path
        route = route_of_path(path, routes)
        if route == UNMATCHED_ROUTE and (spec.method, UNMATCHED_ROUTE) not in counted:
            # No route the server has counted matches, and it counted no unmatched request: it never saw these.
            route = path.split("?", 1)[0]
        groups.setdefault((spec.method, route), []).append(spec)
    rows, mismatches = [], []
    for (method, route), specs in groups.items():
        tallies = [results.by_name[spec.label] for spec in specs if spec.label in results.by_name]
        answered = sum(sum(t.statuses.values()) for t in tallies)
        answered += sum(results.warmup_by_name.get(spec.label, 0) for spec in specs)
        # Requests without a response may or may not have reached the view; dropped ones were never sent.
        errors = sum(
            n for t in tallies for k, n in t.errors.items() if not k.startswith("http_") and k != ERROR_DROPPED
        )
        server = counted.pop((method, route), 0)
        latency = Histogram()
        for tally in tallies:
            latency.merge(tally.latency)
        client_ms = {p: latency_figure(latency, p) for p in PERCENTILES}
        server_ms = {p: server_percentile(buckets.get((method, route), {}), float(p[1:])) for p in PERCENTILES}
        row = {
            "method": method,
            "route": route,
            "names": [spec.label for spec in specs],
            "client_answered": answered,
            "client_no_response": errors,
            "server_counted": server,
            "client_ms": client_ms,
            "server_ms": server_ms,
        }
        rows.append(row)
        where = f"{method} {route}"
        if server < answered:
            mismatches.append(
                f"{where}: the client had {answered - server} answers the server never counted: something in front "
                "of it answered them (a proxy, a cache, a load balancer), or a worker's counts were lost"
            )
        elif server > answered + errors:
            mismatches.append(
                f"{where}: the server counted {server - answered - errors} requests more than the client sent: other "
                "traffic during the run, or a proxy that retried"
            )
    others = {f"{m} {r}": n for (m, r), n in sorted(counted.items())}
    return {"routes": rows, "other_routes": others, "mismatches": mismatches, "warning": after.warning}


def view_of(result: RunResult) -> dict[str, Any] | None:
    """The ``server_metrics`` part of a report: the comparison with the raw readings, an error, or None."""
    if result.server_error is not None:
        return {"error": result.server_error}
    if result.server_readings is None:
        return None
    before, after = result.server_readings
    raw = {"before": before.to_json(), "after": after.to_json()}
    if result.config.share.modulus > 1:
        # One segment's share beside the whole server's counts would be a mismatch: --merge compares the run.
        return {**raw, "error": "a segment's own counts are compared with the server's by --merge"}
    return {**raw, **compare(result.config, result.results, before, after)}


def readings_of(data: dict[str, Any] | None) -> tuple[Reading, Reading] | None:
    """The readings a report's ``server_metrics`` part kept, or None."""
    if not data or "before" not in data:
        return None
    return Reading.from_json(data["before"]), Reading.from_json(data["after"])


def render(view: dict[str, Any]) -> list[str]:
    """The terminal lines of a comparison."""
    lines = ["Server's view (its metrics read before and after the run):"]
    if view.get("warning"):
        lines.append(f"  Warning from the server: {view['warning']}")
    if view.get("error"):
        return [*lines, f"  Not available: {view['error']}"]
    for row in view["routes"]:
        extra = f" (+{row['client_no_response']} without a response)" if row["client_no_response"] else ""
        lines.append(
            f"  {row['method']} {row['route']} [{', '.join(row['names'])}]: client {row['client_answered']} "
            f"answered{extra}, server counted {row['server_counted']}"
        )
        figures = []
        for p in PERCENTILES:
            client, server = row["client_ms"][p], row["server_ms"][p]
            if client is None or server is None:
                continue
            figures.append(f"{p} {client:.2f} vs ~{server:.2f}ms ({client - server:+.2f})")
        if figures:
            lines.append(f"    client vs server: {', '.join(figures)}; the difference is time outside the view")
    if view["other_routes"]:
        others = ", ".join(f"{name}: {count}" for name, count in view["other_routes"].items())
        lines.append(f"  Other requests the server counted meanwhile: {others}")
    lines += [f"  MISMATCH {text}" for text in view["mismatches"]]
    if not view["mismatches"]:
        lines.append("  Client and server counts agree.")
    return lines
