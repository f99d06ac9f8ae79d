"""Pass/fail criteria: the ``--target-*`` flags and k6-style thresholds (``"p95<300"``, ``"error_rate<1%"``).

Both become :class:`Criterion` objects, overall or for one request name, evaluated on the (merged) results.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from django_prodkit.loadtest.histogram import Histogram
from django_prodkit.loadtest.results import Results

DEFAULT_SUCCESS_RATE = 99.0
DEFAULT_AVG_MS = 200.0
DEFAULT_RPS = 50.0
OVERALL = "overall"
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}
EXPRESSION_RE = re.compile(
    r"[ \t]*(?P<metric>p\((?P<pp>\d+(?:\.\d+)?)\)|p(?P<p>\d+(?:\.\d+)?)|avg|min|max|med|median|error_rate|"
    r"success_rate|rps)[ \t]*(?P<op><=|>=|<|>)[ \t]*(?P<value>\d+(?:\.\d+)?)[ \t]*(?P<unit>ms|s|%)?[ \t]*"
)
LABELS = {"avg": "Avg response", "min": "Min response", "max": "Max response", "median": "Median response"}


class ThresholdError(ValueError):
    """A threshold expression cannot be read."""


@dataclass(frozen=True)
class Criterion:
    """One target: a figure of the overall results or of one request name, compared with a value."""

    metric: str
    comparison: str
    target: float
    scope: str = OVERALL
    expression: str = ""
    #: Said after the label, e.g. that a throughput target was scaled to a segment's share.
    note: str = ""

    @property
    def unit(self) -> str:
        """The unit of the figure."""
        if self.metric in ("error_rate", "success_rate"):
            return "%"
        return "req/s" if self.metric == "rps" else "ms"

    @property
    def label(self) -> str:
        """A readable name: ``P95 response``, ``Success rate``, ``Throughput``..."""
        if self.metric.startswith("p"):
            label = f"{self.metric.upper()} response"
        else:
            label = {"error_rate": "Error rate", "success_rate": "Success rate", "rps": "Throughput"}.get(
                self.metric, LABELS.get(self.metric, self.metric)
            )
        label = label if self.scope == OVERALL else f"{label} of {self.scope}"
        return f"{label} ({self.note})" if self.note else label

    def actual(self, results: Results) -> float | None:
        """The figure this criterion looks at, or None when there is none (no responses, unknown name)."""
        tally = results.total if self.scope == OVERALL else results.by_name.get(self.scope)
        if tally is None:
            return None
        if self.metric == "rps":
            return tally.requests / results.duration if results.duration > 0 else 0.0
        if self.metric in ("error_rate", "success_rate"):
            if not tally.requests:
                return None
            return tally.success_rate if self.metric == "success_rate" else 100.0 - tally.success_rate
        return latency_figure(tally.latency, self.metric)

    def passed(self, results: Results) -> bool:
        """Whether the figure meets the target (no figure at all never does)."""
        value = self.actual(results)
        return value is not None and COMPARISONS[self.comparison](value, self.target)

    def lost(self, failed: int, over: int, expected: int) -> bool:
        """Whether this can no longer pass: ``failed`` failures or ``over`` responses slower than the target
        already exceed what ``expected`` requests in all may have. Only upper bounds on latency and error rate,
        and lower bounds on the success rate, can be lost early."""
        if self.metric == "error_rate" and self.comparison in ("<", "<="):
            return failed > self.target / 100.0 * expected
        if self.metric == "success_rate" and self.comparison in (">", ">="):
            return failed > (100.0 - self.target) / 100.0 * expected
        if self.metric[1:].replace(".", "").isdigit() and self.comparison in ("<", "<="):
            return over > (1 - float(self.metric[1:]) / 100.0) * expected
        return False


def latency_figure(histogram: Histogram, metric: str) -> float | None:
    """avg, min, max, median or pNN in ms of a histogram; None when it is empty."""
    if not histogram.count:
        return None
    if metric == "avg":
        return histogram.sum_us / histogram.count / 1000.0
    if metric == "min":
        return histogram.min_us / 1000.0
    if metric == "max":
        return histogram.max_us / 1000.0
    if metric == "median":
        return histogram.percentile(50.0)
    return histogram.percentile(float(metric[1:]))


def parse_threshold(text: str, scope: str = OVERALL) -> Criterion:
    """Read ``"p95<300"``, ``"p(99)<1s"``, ``"avg<200"``, ``"error_rate<1%"``, ``"rps>100"``."""
    match = EXPRESSION_RE.fullmatch(text)
    if not match:
        raise ThresholdError(
            f"threshold {text!r}: expected e.g. 'p95<300', 'avg<200ms', 'error_rate<1%', 'success_rate>=99%', 'rps>50'"
        )
    percentile = match.group("pp") or match.group("p")
    metric = f"p{percentile}" if percentile else match.group("metric")
    metric = "median" if metric == "med" else metric
    if percentile is not None and not 0 < float(percentile) <= 100:
        raise ThresholdError(f"threshold {text!r}: a percentile is between 0 and 100")
    value, unit = float(match.group("value")), match.group("unit")
    rates = metric in ("error_rate", "success_rate")
    if (rates and unit not in (None, "%")) or (not rates and unit == "%") or (metric == "rps" and unit):
        raise ThresholdError(f"threshold {text!r}: {unit!r} is not a unit of {metric}")
    if rates and unit is None:
        value *= 100.0  # k6 writes rates as fractions: error_rate<0.01 is 1 %.
    if unit == "s":
        value *= 1000.0
    return Criterion(metric, match.group("op"), value, scope, text.strip())


@dataclass(frozen=True)
class Targets:
    """The ``--target-*`` flags: the default criteria of every run; the percentile targets are optional."""

    success_rate: float = DEFAULT_SUCCESS_RATE
    avg_ms: float = DEFAULT_AVG_MS
    rps: float = DEFAULT_RPS
    p95_ms: float | None = None
    p99_ms: float | None = None

    def criteria(self) -> list[Criterion]:
        """The flags as criteria, in the order the reports show them."""
        result = [
            Criterion("success_rate", ">=", self.success_rate),
            Criterion("avg", "<", self.avg_ms),
            Criterion("rps", ">", self.rps),
        ]
        if self.p95_ms is not None:
            result.append(Criterion("p95", "<", self.p95_ms))
        if self.p99_ms is not None:
            result.append(Criterion("p99", "<", self.p99_ms))
        return result


@dataclass(frozen=True)
class Verdict:
    """One criterion after the run."""

    criterion: Criterion
    actual: float | None
    passed: bool


def for_share(criteria: list[Criterion], fraction: float, share: str) -> list[Criterion]:
    """The criteria a share of the run is judged by: a throughput target scaled to the share's part of the load,
    every other criterion (rates, latencies) as it is."""
    if fraction >= 1.0:
        return criteria
    return [
        replace(c, target=c.target * fraction, note=f"{share} share of {c.comparison}{c.target:g} req/s")
        if c.metric == "rps"
        else c
        for c in criteria
    ]


def evaluate(results: Results, criteria: list[Criterion]) -> list[Verdict]:
    """Check results against every criterion."""
    return [Verdict(c, c.actual(results), c.passed(results)) for c in criteria]
