"""The JSON document of the metrics endpoint, computed from the store's metric families."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from prometheus_client.metrics_core import Metric

from django_prodkit.metrics.store import (
    DB_QUERIES_METRIC,
    DURATION_METRIC,
    REQUESTS_METRIC,
    TASK_DURATION_METRIC,
    TASKS_METRIC,
)

#: The percentiles reported overall and for each top endpoint.
PERCENTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))

Buckets = list[tuple[float, float]]  # (upper bound in seconds, cumulative count), ascending, ending at +Inf


def percentile(buckets: Buckets, quantile: float) -> float | None:
    """The nearest-rank ``quantile`` in seconds estimated from cumulative histogram buckets.

    The bucket holding the ranked observation is exact; inside it the geometric midpoint is reported, so
    the error is at most ``sqrt(hi / lo) - 1`` (see ``store.percentile_error_bound``). Below the lowest
    bound the lowest bound is reported, above the highest finite bound the highest finite bound.
    """
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    rank = max(1.0, math.ceil(quantile * total))
    lower = 0.0
    for upper, cumulative in buckets:
        if cumulative >= rank:
            if math.isinf(upper):
                return lower
            if lower <= 0.0:
                return upper
            return math.sqrt(lower * upper)
        lower = upper
    return lower


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def _endpoint(method: str, route: str) -> str:
    return f"{method} {route}"


def _timing(buckets: Buckets, total_seconds: float, count: float) -> dict[str, float | None]:
    timing: dict[str, float | None] = {"avg": round(total_seconds / count * 1000.0, 2) if count else 0.0}
    for name, quantile in PERCENTILES:
        timing[name] = _ms(percentile(buckets, quantile))
    return timing


def _merge_buckets(per_endpoint: Iterable[dict[float, float]]) -> Buckets:
    summed: dict[float, float] = defaultdict(float)
    for buckets in per_endpoint:
        for bound, cumulative in buckets.items():
            summed[bound] += cumulative
    return sorted(summed.items())


def task_summary(families: Sequence[Metric]) -> dict[str, dict[str, float | int | None]]:
    """Per task name: runs, how many failed and were retried, their average and 95th percentile duration."""
    outcomes: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    buckets: dict[str, dict[float, float]] = defaultdict(dict)
    sums: dict[str, float] = defaultdict(float)
    for family in families:
        for sample in family.samples:
            if family.name == TASKS_METRIC and sample.name == TASKS_METRIC + "_total":
                outcomes[sample.labels["task"]][sample.labels["outcome"]] += sample.value
            elif family.name == TASK_DURATION_METRIC:
                if sample.name == TASK_DURATION_METRIC + "_bucket":
                    buckets[sample.labels["task"]][float(sample.labels["le"])] = sample.value
                elif sample.name == TASK_DURATION_METRIC + "_sum":
                    sums[sample.labels["task"]] += sample.value
    summary: dict[str, dict[str, float | int | None]] = {}
    for task in sorted(outcomes):
        count = sum(outcomes[task].values())
        summary[task] = {
            "count": int(count),
            "succeeded": int(outcomes[task]["succeeded"]),
            "failed": int(outcomes[task]["failed"]),
            "retried": int(outcomes[task]["retried"]),
            "avg_duration_ms": round(sums[task] / count * 1000.0, 2) if count else 0.0,
            "p95_ms": _ms(percentile(sorted(buckets[task].items()), 0.95)),
        }
    return summary


def build_snapshot(families: Sequence[Metric], started_at: float, top: int, mode: str) -> dict[str, Any]:
    """The endpoint's JSON document: counts, response times, error rates and the top endpoints."""
    status_codes: dict[str, float] = defaultdict(float)
    endpoint_counts: dict[str, float] = defaultdict(float)
    buckets: dict[str, dict[float, float]] = defaultdict(dict)
    sums: dict[str, float] = defaultdict(float)
    query_sums: dict[str, float] = defaultdict(float)
    query_counts: dict[str, float] = defaultdict(float)
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if family.name == REQUESTS_METRIC and sample.name == REQUESTS_METRIC + "_total":
                status_codes[labels["status"]] += sample.value
                endpoint_counts[_endpoint(labels["method"], labels["route"])] += sample.value
            elif family.name == DURATION_METRIC:
                key = _endpoint(labels["method"], labels["route"])
                if sample.name == DURATION_METRIC + "_bucket":
                    buckets[key][float(labels["le"])] = sample.value
                elif sample.name == DURATION_METRIC + "_sum":
                    sums[key] += sample.value
            elif family.name == DB_QUERIES_METRIC:
                key = _endpoint(labels["method"], labels["route"])
                if sample.name == DB_QUERIES_METRIC + "_sum":
                    query_sums[key] += sample.value
                elif sample.name == DB_QUERIES_METRIC + "_count":
                    query_counts[key] += sample.value
    total = sum(status_codes.values())
    client_errors = sum(v for code, v in status_codes.items() if code.startswith("4"))
    server_errors = sum(v for code, v in status_codes.items() if code.startswith("5"))
    overall_buckets = _merge_buckets(buckets.values())
    overall_count = overall_buckets[-1][1] if overall_buckets else 0.0
    overall = _timing(overall_buckets, sum(sums.values()), overall_count)
    ranked = sorted(endpoint_counts.items(), key=lambda item: (-item[1], item[0]))[:top]
    top_timing = {}
    for key, _count in ranked:
        endpoint_buckets = sorted(buckets.get(key, {}).items())
        count = endpoint_buckets[-1][1] if endpoint_buckets else 0.0
        top_timing[key] = _timing(endpoint_buckets, sums.get(key, 0.0), count)
    return {
        "request_count": int(total),
        "avg_response_time_ms": overall["avg"],
        "response_time_ms": overall,
        "status_codes": {code: int(v) for code, v in sorted(status_codes.items(), key=lambda i: int(i[0]))},
        "error_rate": {
            "4xx": round(client_errors / total, 4) if total else 0.0,
            "5xx": round(server_errors / total, 4) if total else 0.0,
        },
        "top_endpoints": {key: int(count) for key, count in ranked},
        "top_endpoints_response_time_ms": top_timing,
        "db_queries_avg": {
            key: round(query_sums[key] / query_counts[key], 2) for key, _count in ranked if query_counts.get(key)
        },
        "tasks": task_summary(families),
        "started_at": datetime.fromtimestamp(started_at, tz=timezone.utc).isoformat(),
        "mode": mode,
    }
