"""The command line's options turned into a validated configuration and criteria (shared by both front doors)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from django_prodkit.loadtest import thresholds as th
from django_prodkit.loadtest.config import (
    DEFAULT_METHOD,
    DEFAULT_PATH,
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    ConfigError,
    LoadTestConfig,
    RequestSpec,
    check_method,
    parse_header,
    parse_url,
    validate,
)
from django_prodkit.loadtest.scenario import Scenario, ScenarioError, load_scenario
from django_prodkit.loadtest.server_metrics import MetricsReader
from django_prodkit.loadtest.share import Share, parse_segment

# More engine processes than any machine has cores: a typo, not a plan.
MAX_PROCESSES = 1024


@dataclass(frozen=True)
class Plan:
    """Everything a run needs besides the target: config, criteria, processes."""

    config: LoadTestConfig
    criteria: list[th.Criterion]
    abort_on_fail: bool
    processes: int
    server_metrics: MetricsReader | None = None


def parse_start_at(text: str) -> float:
    """``--start-at``: an ISO 8601 time (UTC when no offset is given) or seconds since the epoch."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--start-at {text!r}: expected an ISO 8601 time or seconds since the epoch") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def parse_processes(text: str) -> int:
    """``--processes N|auto``."""
    if text == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if not text.isdigit() or not 1 <= int(text) <= MAX_PROCESSES:
        raise ConfigError(f"--processes {text!r}: a number from 1 to {MAX_PROCESSES}, or auto")
    return int(text)


def check_writable(path: Path | None, option: str) -> None:
    """Fail before the run, not after it, when a report file cannot be written."""
    if path is None:
        return
    existed = path.exists()
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot be written ({exc.strerror or exc})") from None
    if not existed:
        path.unlink()


def _specs(options: dict[str, Any], scenario: Scenario | None) -> tuple[RequestSpec, ...]:
    if scenario is not None:
        given = options["paths"] or options["method"] or options["body"] is not None or options["body_file"]
        if given or options["expect_status"]:
            raise ConfigError(
                "--scenario gives the requests: leave out --path, --method, --body, --body-file and --expect-status"
            )
        headers = tuple(parse_header(header) for header in options["headers"])
        return tuple(RequestSpec(**{**spec.__dict__, "headers": headers + spec.headers}) for spec in scenario.specs)
    if options["body"] is not None and options["body_file"] is not None:
        raise ConfigError("give --body or --body-file, not both")
    body = (options["body"] or "").encode()
    if options["body_file"] is not None:
        try:
            body = options["body_file"].read_bytes()
        except OSError as exc:
            raise ConfigError(f"--body-file: {exc}") from None
    method = (options["method"] or DEFAULT_METHOD).upper()
    check_method(options["method"] or DEFAULT_METHOD)
    headers = tuple(parse_header(header) for header in options["headers"])
    expect = frozenset(options["expect_status"])
    return tuple(
        RequestSpec(path, method=method, headers=headers, body=body, expect_status=expect)
        for path in options["paths"] or [DEFAULT_PATH]
    )


def targets(options: dict[str, Any]) -> list[th.Criterion]:
    """The ``--target-*`` flags and ``--threshold`` expressions as criteria."""
    flags = th.Targets(
        success_rate=options["target_success_rate"],
        avg_ms=options["target_avg_ms"],
        rps=options["target_rps"],
        p95_ms=options["target_p95_ms"],
        p99_ms=options["target_p99_ms"],
    )
    if not 0 <= flags.success_rate <= 100:
        raise ConfigError("--target-success-rate is a percentage between 0 and 100")
    values = (flags.avg_ms, flags.rps, flags.p95_ms, flags.p99_ms)
    if any(v is not None and (v < 0 or not math.isfinite(v)) for v in values):
        raise ConfigError("a --target-* value cannot be negative")
    criteria = flags.criteria()
    for text in options["thresholds"]:
        scope, _, expression = text.rpartition(":")
        try:
            criteria.append(th.parse_threshold(expression, scope or th.OVERALL))
        except th.ThresholdError as exc:
            raise ConfigError(f"--threshold: {exc}") from None
    return criteria


def load_scenario_option(options: dict[str, Any]) -> Scenario | None:
    """The ``--scenario`` file, or None."""
    if options["scenario"] is None:
        return None
    try:
        return load_scenario(options["scenario"])
    except ScenarioError as exc:
        raise ConfigError(str(exc)) from None


def plan(options: dict[str, Any]) -> Plan:
    """Build and check the whole plan from parsed options; ConfigError names the option at fault."""
    scenario = load_scenario_option(options)
    load = scenario.load if scenario is not None else {}

    def pick(option: str, key: str, default: Any) -> Any:
        value = options[option]
        return value if value is not None else load.get(key, default)

    users = pick("users", "users", None)
    if users is None:
        raise ConfigError("give USERS (or users in the scenario)")
    share = Share()
    if options["segment"]:
        try:
            share = parse_segment(options["segment"])
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    specs = _specs(options, scenario)
    config = LoadTestConfig(
        target=parse_url(pick("url", "url", DEFAULT_URL)),
        users=users,
        requests=pick("requests", "requests_per_user", None),
        duration=pick("duration", "duration", None),
        rate=pick("rate", "rate", None),
        specs=specs,
        timeout=pick("timeout", "timeout", DEFAULT_TIMEOUT),
        warmup=pick("warmup", "warmup", 0),
        insecure=options["insecure"],
        stages=scenario.stages if scenario is not None else (),
        share=share,
        start_at=parse_start_at(options["start_at"]) if options["start_at"] else None,
        given_run_id=options["run_id"],
    )
    criteria = targets(options) + list(scenario.criteria if scenario is not None else ())
    # A segment is judged by its share of the throughput, as each process of --processes is.
    criteria = th.for_share(criteria, config.share_fraction, f"segment {share.label}'s")
    names = {spec.label for spec in specs}
    for criterion in criteria:
        if criterion.scope != th.OVERALL and criterion.scope not in names:
            raise ConfigError(f"--threshold {criterion.expression!r}: no request is named {criterion.scope!r}")
    check_writable(options["json"], "--json")
    check_writable(options["html"], "--html")
    abort = options["abort_on_fail"] or (scenario is not None and scenario.abort_on_fail)
    reader = MetricsReader(options["server_metrics"]) if options["server_metrics"] else None
    return Plan(validate(config), criteria, abort, parse_processes(options["processes"]), reader)
