"""The server's view beside the client's: per route, what the client had answered and what the server counted, both
sides' percentiles, and the mismatches (see docs/load-testing.md, "The server's view")."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from django_prodkit.loadtest.config import LoadTestConfig, RequestSpec
from django_prodkit.loadtest.histogram import Histogram, nearest_rank
from django_prodkit.loadtest.outcome import RunResult
from django_prodkit.loadtest.results import ERROR_DROPPED, Results
from django_prodkit.loadtest.server_metrics import Endpoint, Reading
from django_prodkit.loadtest.thresholds import latency_figure

UNMATCHED_ROUTE = "<unmatched>"
PERCENTILES = ("p50", "p95", "p99")
# Django's path converters; any other converter matches one path segment.
CONVERTERS = {"int": "[0-9]+", "slug": "[-a-zA-Z0-9_]+", "uuid": "[0-9a-f-]{36}", "path": ".+", "str": "[^/]+"}
CONVERTER_RE = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>[^>]+)>")


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
