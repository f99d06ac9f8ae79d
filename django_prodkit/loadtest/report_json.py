"""The machine-readable report: one JSON document, described by ``report.schema.json`` next to this module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import django_prodkit
from django_prodkit.loadtest.engine import RunResult
from django_prodkit.loadtest.stats import LatencyStats
from django_prodkit.loadtest.thresholds import CriterionResult

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("report.schema.json")


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _latency(latency: LatencyStats | None) -> dict[str, float] | None:
    if latency is None:
        return None
    names = ("min", "max", "avg", "median", "p90", "p95", "p99")
    return {name: round(getattr(latency, name), 3) for name in names}


def report_dict(result: RunResult, criteria: list[CriterionResult]) -> dict[str, Any]:
    """The whole result as plain JSON-serialisable data."""
    config, summary = result.config, result.summary
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": {"name": "django-prodkit loadtest", "version": django_prodkit.__version__},
        "started_at": result.started_at.isoformat(),
        "interrupted": result.interrupted,
        "passed": not result.interrupted and all(c.passed for c in criteria),
        "config": {
            "url": config.target.url(),
            "paths": list(config.paths),
            "method": config.method,
            "users": config.users,
            "requests_per_user": config.requests,
            "duration_s": config.duration,
            "rate": config.rate,
            "mode": "open_loop" if config.rate is not None else "closed_loop",
            "warmup": config.warmup,
            "timeout_s": config.timeout,
            "expect_status": sorted(config.expect_status),
            "http_parser": result.parser,
            "event_loop": result.event_loop,
        },
        "totals": {
            "requests": summary.requests,
            "successful": summary.successful,
            "failed": summary.failed,
            "success_rate": round(summary.success_rate, 3),
            "duration_s": round(summary.duration, 4),
            "requests_per_second": round(summary.requests_per_second, 3),
            "bytes_received": summary.bytes_received,
            "warmup_requests": result.warmup_requests,
        },
        "latency_ms": _latency(summary.latency),
        "status_codes": {str(status): count for status, count in summary.status_codes.items()},
        "errors": dict(summary.errors),
        "criteria": [
            {
                "name": c.name,
                "comparison": c.comparison,
                "target": c.target,
                "actual": None if c.actual is None else round(c.actual, 3),
                "unit": c.unit,
                "passed": c.passed,
            }
            for c in criteria
        ],
        "timeline": [
            {
                "second": p.second,
                "requests": p.requests,
                "failed": p.failed,
                "p50_ms": _ms(p.p50_ms),
                "p95_ms": _ms(p.p95_ms),
                "p99_ms": _ms(p.p99_ms),
            }
            for p in summary.timeline
        ],
        "histogram": [
            {"from_ms": round(low, 3), "to_ms": round(high, 3), "count": count}
            for low, high, count in summary.histogram
        ],
    }


def write_json(path: Path, result: RunResult, criteria: list[CriterionResult]) -> None:
    """Write the JSON report to ``path``."""
    path.write_text(json.dumps(report_dict(result, criteria), indent=2) + "\n", encoding="utf-8")
