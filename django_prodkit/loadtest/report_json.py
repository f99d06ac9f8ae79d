"""The machine-readable report: one JSON document (``report.schema.json``) that also merges exactly.

Besides the figures it keeps the run's identity, its share (``--segment``) and the latency histograms, so
``loadtest --merge`` can combine the reports of the segments of a run into the report of the whole run.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import django_prodkit
from django_prodkit.loadtest.config import LoadTestConfig, RequestSpec, Stage, parse_url, validate
from django_prodkit.loadtest.histogram import Histogram
from django_prodkit.loadtest.outcome import RunResult
from django_prodkit.loadtest.results import Results, Tally
from django_prodkit.loadtest.server_metrics import readings_of
from django_prodkit.loadtest.server_view import view_of
from django_prodkit.loadtest.share import Share
from django_prodkit.loadtest.thresholds import Verdict, latency_figure

SCHEMA_VERSION = 2
SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
LATENCY_FIGURES = ("min", "max", "avg", "median", "p90", "p95", "p99")
# More segments than any orchestrator starts; the coverage check stays bounded (share.MAX_COVER_CHECK).
MAX_SEGMENTS = 1 << 16


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def latency_json(histogram: Histogram) -> dict[str, float] | None:
    """min, max, avg and percentiles in ms, or None without responses."""
    if not histogram.count:
        return None
    return {name: round(latency_figure(histogram, name) or 0.0, 3) for name in LATENCY_FIGURES}


def _tally(tally: Tally, duration: float) -> dict[str, Any]:
    return {
        "requests": tally.requests,
        "successful": tally.successful,
        "failed": tally.failed,
        "dropped": tally.dropped,
        "success_rate": round(tally.success_rate, 3),
        "requests_per_second": round(tally.requests / duration, 3) if duration > 0 else 0.0,
        "latency_ms": latency_json(tally.latency),
    }


def config_json(config: LoadTestConfig) -> dict[str, Any]:
    """The run's settings (request headers and bodies are left out: they may hold credentials)."""
    return {
        "url": config.target.url(),
        "requests": [
            {
                "name": s.label,
                "method": s.method,
                "path": s.path,
                "weight": s.weight,
                "expect_status": sorted(s.expect_status),
            }
            for s in config.specs
        ],
        "users": config.users,
        "requests_per_user": config.requests,
        "duration_s": config.duration,
        "rate": config.rate,
        "stages": [{"duration": stage.duration, "target": stage.target} for stage in config.stages],
        "mode": "open_loop" if config.open_loop else "closed_loop",
        "warmup": config.warmup,
        "timeout_s": config.timeout,
        "start_at": config.start_at,
    }


def report_dict(result: RunResult, verdicts: list[Verdict]) -> dict[str, Any]:
    """The whole result as plain JSON-serialisable data."""
    config, results = result.config, result.results
    share = config.share
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": {"name": "django-prodkit loadtest", "version": django_prodkit.__version__},
        "run": {
            "id": config.run_id,
            "segment": {"offset": share.offset, "modulus": share.modulus, "segments": share.segments},
        },
        "started_at": result.started_at.isoformat(),
        "interrupted": result.interrupted,
        "stopped": result.stopped,
        "passed": not result.interrupted and all(v.passed for v in verdicts),
        "config": {**config_json(config), "http_parser": result.parser, "event_loop": result.event_loop},
        "totals": {
            **_tally(results.total, results.duration),
            "duration_s": round(results.duration, 4),
            "bytes_received": results.bytes_received,
            "warmup_requests": results.warmup_requests,
        },
        "status_codes": {str(status): count for status, count in sorted(results.total.statuses.items())},
        "errors": results.total.failures(),
        "redirects": dict(sorted(results.total.redirects.items())),
        "by_request": {name: _tally(tally, results.duration) for name, tally in results.by_name.items()},
        "criteria": [
            {
                "name": v.criterion.label,
                "scope": v.criterion.scope,
                "metric": v.criterion.metric,
                "comparison": v.criterion.comparison,
                "target": v.criterion.target,
                "actual": _round(v.actual),
                "unit": v.criterion.unit,
                "passed": v.passed,
            }
            for v in verdicts
        ],
        "timeline": [
            {
                "second": second,
                "requests": tally.requests,
                "failed": tally.failed,
                **{f"{p}_ms": _round(latency_figure(tally.latency, p)) for p in ("p50", "p95", "p99")},
            }
            for second, tally in enumerate(results.timeline)
        ],
        "mergeable": results.to_json(),
        "server_metrics": view_of(result),
    }


def write_json(path: Path, result: RunResult, verdicts: list[Verdict]) -> None:
    """Write the JSON report to ``path``."""
    path.write_text(json.dumps(report_dict(result, verdicts), indent=2) + "\n", encoding="utf-8")


def read_report(data: dict[str, Any]) -> tuple[RunResult, str]:
    """A report's result and run id back from its JSON data; KeyError/ValueError/TypeError when it is not one."""
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"schema_version {data.get('schema_version')!r}, expected {SCHEMA_VERSION}")
    conf, segment = data["config"], data["run"]["segment"]
    specs = tuple(
        RequestSpec(
            path=item["path"],
            name=item["name"],
            method=item["method"],
            weight=float(item["weight"]),
            expect_status=frozenset(item["expect_status"]),
        )
        for item in conf["requests"]
    )
    share = Share(int(segment["offset"]), int(segment["modulus"]), int(segment["segments"]))
    if not (0 <= share.offset < share.modulus <= MAX_SEGMENTS and 1 <= share.segments <= share.modulus):
        raise ValueError(f"segment {segment!r}: not a share of a run")
    config = LoadTestConfig(
        target=parse_url(conf["url"]),
        users=int(conf["users"]),
        requests=conf["requests_per_user"],
        duration=conf["duration_s"],
        rate=conf["rate"],
        specs=specs,
        timeout=float(conf["timeout_s"]),
        warmup=int(conf["warmup"]),
        stages=tuple(Stage(float(s["duration"]), float(s["target"])) for s in conf["stages"]),
        share=share,
        start_at=conf["start_at"],
        given_run_id=str(data["run"]["id"]),
    )
    validate(config)
    result = RunResult(
        config=config,
        results=Results.from_json(data["mergeable"]),
        started_at=datetime.fromisoformat(data["started_at"]),
        stopped=data["stopped"],
        parser=str(conf["http_parser"]),
        event_loop=str(conf["event_loop"]),
        server_readings=readings_of(data.get("server_metrics")),
    )
    return result, str(data["run"]["id"])
