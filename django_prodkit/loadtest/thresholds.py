"""Pass/fail criteria: each a target, the actual figure and the verdict."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

from django_prodkit.loadtest.stats import Summary

DEFAULT_SUCCESS_RATE = 99.0
DEFAULT_AVG_MS = 200.0
DEFAULT_RPS = 50.0
COMPARISONS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, ">": operator.gt, "<": operator.lt}


@dataclass(frozen=True)
class Thresholds:
    """The targets a run must meet; the percentile targets are optional."""

    success_rate: float = DEFAULT_SUCCESS_RATE
    avg_ms: float = DEFAULT_AVG_MS
    rps: float = DEFAULT_RPS
    p95_ms: float | None = None
    p99_ms: float | None = None


@dataclass(frozen=True)
class CriterionResult:
    """One criterion after the run."""

    name: str
    label: str
    comparison: str
    target: float
    actual: float | None
    unit: str

    @property
    def passed(self) -> bool:
        """Whether the actual figure meets the target (no figure at all never does)."""
        return self.actual is not None and COMPARISONS[self.comparison](self.actual, self.target)


def evaluate(summary: Summary, thresholds: Thresholds) -> list[CriterionResult]:
    """Check a summary against the targets, in the order the reports show them."""
    latency = summary.latency
    avg, p95, p99 = (None, None, None) if latency is None else (latency.avg, latency.p95, latency.p99)
    results = [
        CriterionResult("success_rate", "Success rate", ">=", thresholds.success_rate, summary.success_rate, "%"),
        CriterionResult("avg_ms", "Avg response", "<", thresholds.avg_ms, avg, "ms"),
        CriterionResult("rps", "Throughput", ">", thresholds.rps, summary.requests_per_second, "req/s"),
    ]
    if thresholds.p95_ms is not None:
        results.append(CriterionResult("p95_ms", "P95 response", "<", thresholds.p95_ms, p95, "ms"))
    if thresholds.p99_ms is not None:
        results.append(CriterionResult("p99_ms", "P99 response", "<", thresholds.p99_ms, p99, "ms"))
    return results
