"""The objectives as CloudWatch burn-rate alarms: a metric-math alarm per window, composite alarms per severity.

Each window pair of the SRE workbook becomes two metric alarms (the long and the short window, each a single
period as long as its window) joined with AND in a composite alarm per objective and severity; the ticket
composite is silenced while the page composite is in alarm, as Alertmanager's inhibition would.
"""

from __future__ import annotations

from typing import Any

from django_prodkit.cloudwatch.config import (
    ENDPOINT_DIMENSION,
    METHOD_DIMENSION,
    CloudWatchSettings,
)
from django_prodkit.cloudwatch.emf import REQUEST_COUNT, RESPONSE_TIME
from django_prodkit.objectives.declaration import (
    AVAILABILITY,
    PAGE,
    SEVERITIES,
    WINDOW_PAIRS,
    WINDOW_SECONDS,
    Declaration,
    Objective,
    WindowPair,
)

#: AWS's limit on metrics and expressions in one alarm's metric math.
MAX_QUERIES = 10
_CLASSES = {"5xx": "Status5xx", "4xx": "Status4xx"}


class UnsupportedObjectiveError(ValueError):
    """An objective CloudWatch's published metrics cannot express."""


def _endpoints(objective: Objective) -> list[list[tuple[str, str]]]:
    """Extra dimensions of each endpoint the objective covers; one empty list for the whole service."""
    if not objective.routes:
        return [[]]
    if not objective.methods:
        raise UnsupportedObjectiveError(
            f"Objective {objective.name!r} names ROUTES but no METHODS: CloudWatch has a metric per route and "
            "method, so give the methods (e.g. ['GET']) to alarm on."
        )
    return [[(ENDPOINT_DIMENSION, r), (METHOD_DIMENSION, m)] for r in objective.routes for m in objective.methods]


def _stat(settings: CloudWatchSettings, metric: str, extra: list[tuple[str, str]], period: int, stat: str) -> Any:
    dimensions = [*settings.service_dimensions, *extra]
    return {
        "Metric": {
            "Namespace": settings.namespace,
            "MetricName": metric,
            "Dimensions": [{"Name": name, "Value": value} for name, value in dimensions],
        },
        "Period": period,
        "Stat": stat,
    }


def _queries(
    settings: CloudWatchSettings, objective: Objective, period: int, min_requests: int
) -> list[dict[str, Any]]:
    """The metric math: the share of bad requests over one period, 0 below ``min_requests``."""
    queries: list[dict[str, Any]] = []
    bad: list[str] = []
    total: list[str] = []
    for n, extra in enumerate(_endpoints(objective)):
        queries.append(
            {"Id": f"total{n}", "MetricStat": _stat(settings, REQUEST_COUNT, extra, period, "Sum"), "ReturnData": False}
        )
        total.append(f"total{n}")
        if objective.kind == AVAILABILITY:
            for error in objective.errors:
                if error not in _CLASSES:
                    raise UnsupportedObjectiveError(
                        f"Objective {objective.name!r} counts status {error} as an error; CloudWatch has counts per "
                        "status class only (ERRORS ['5xx'] or ['5xx', '4xx'])."
                    )
                # An Id starts with a lowercase letter ("5xx0" is refused).
                queries.append(
                    {
                        "Id": f"status{error}{n}",
                        "MetricStat": _stat(settings, _CLASSES[error], extra, period, "Sum"),
                        "ReturnData": False,
                    }
                )
                bad.append(f"status{error}{n}")
        else:
            assert objective.edge is not None
            # PR(:x) is the percentage of the period's response times at or below x ms.
            rank = f"PR(:{objective.edge * 1000:g})"
            queries.append(
                {
                    "Id": f"fast{n}",
                    "MetricStat": _stat(settings, RESPONSE_TIME, extra, period, rank),
                    "ReturnData": False,
                }
            )
            bad.append(f"(total{n} - total{n} * fast{n} / 100)")
    ratio = f"({' + '.join(bad)}) / ({' + '.join(total)})"
    guard = f"IF(({' + '.join(total)}) >= {min_requests}, {ratio}, 0)" if min_requests else ratio
    queries.insert(0, {"Id": "ratio", "Expression": guard, "Label": "bad requests (share)", "ReturnData": True})
    if len(queries) > MAX_QUERIES:
        raise UnsupportedObjectiveError(
            f"Objective {objective.name!r} needs {len(queries)} metrics per alarm, more than CloudWatch's "
            f"{MAX_QUERIES}: declare fewer ROUTES x METHODS, or alarm on the whole service."
        )
    return queries


def _window_alarm(
    declaration: Declaration, settings: CloudWatchSettings, objective: Objective, pair: WindowPair, window: str
) -> dict[str, Any]:
    factor = pair.factor(declaration.window_days)
    is_long = window == pair.long
    return {
        "AlarmName": _window_alarm_name(declaration, objective, pair, window),
        "AlarmDescription": (
            f"Part of {_composite_name(declaration, objective, pair.severity)}: over the last {window}, more than "
            f"{factor:g} x {objective.budget:.4g} of requests were bad ({objective.sentence(declaration.window_days)})."
        )[:1024],
        # Only the composite alarms notify.
        "ActionsEnabled": False,
        "Metrics": _queries(settings, objective, WINDOW_SECONDS[window], declaration.min_requests if is_long else 0),
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": round(factor * objective.budget, 12),
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1,
        # No traffic is not an incident.
        "TreatMissingData": "notBreaching",
    }


def _window_alarm_name(declaration: Declaration, objective: Objective, pair: WindowPair, window: str) -> str:
    return f"{declaration.service}-{objective.name}-burn-{window}-of-{pair.long}-{pair.short}"


def _composite_name(declaration: Declaration, objective: Objective, severity: str) -> str:
    return f"{declaration.service}-{objective.name}-{severity}"


def _composite(
    declaration: Declaration, objective: Objective, severity: str, actions: tuple[str, ...]
) -> dict[str, Any]:
    pairs = [p for p in WINDOW_PAIRS if p.severity == severity]
    rule = " OR ".join(
        "("
        + " AND ".join(f'ALARM("{_window_alarm_name(declaration, objective, p, w)}")' for w in (p.long, p.short))
        + ")"
        for p in pairs
    )
    if severity != PAGE:
        rule = f'({rule}) AND NOT ALARM("{_composite_name(declaration, objective, PAGE)}")'
    days = declaration.window_days
    windows = "; ".join(
        f"{p.long} and {p.short} above {p.factor(days):g}x ({p.budget_share:.0%} of the budget in {p.long})"
        for p in pairs
    )
    runbook = declaration.runbook(objective, severity)
    description = (
        f"{severity}: the {days}-day error budget of {objective.name} ({objective.sentence(days)}) is burning: "
        f"{windows}.{' Runbook: ' + runbook if runbook else ''}"
    )
    return {
        "AlarmName": _composite_name(declaration, objective, severity),
        "AlarmDescription": description[:1024],
        "AlarmRule": rule,
        "ActionsEnabled": bool(actions),
        "AlarmActions": list(actions),
        "OKActions": list(actions),
        # For routing, and for creating the page alarm before the ticket alarm that refers to it.
        "Tags": [{"Key": "slo", "Value": objective.name}, {"Key": "severity", "Value": severity}],
    }


def alarms(
    declaration: Declaration, settings: CloudWatchSettings, actions: tuple[str, ...] = ()
) -> dict[str, list[dict[str, Any]]]:
    """``{"alarms": [PutMetricAlarm input], "composite_alarms": [PutCompositeAlarm input]}``, in creation order."""
    metric_alarms: list[dict[str, Any]] = []
    composites: list[dict[str, Any]] = []
    for objective in declaration.objectives:
        for pair in WINDOW_PAIRS:
            metric_alarms += [_window_alarm(declaration, settings, objective, pair, w) for w in (pair.long, pair.short)]
        composites += [_composite(declaration, objective, severity, actions) for severity in SEVERITIES]
    return {"alarms": metric_alarms, "composite_alarms": composites}


def apply(document: dict[str, list[dict[str, Any]]], client: Any) -> list[str]:
    """Create or update the alarms with a boto3 CloudWatch client, components first; return what was written."""
    written = []
    for alarm in document["alarms"]:
        client.put_metric_alarm(**alarm)
        written.append(f"alarm {alarm['AlarmName']}")
    for alarm in document["composite_alarms"]:
        client.put_composite_alarm(**alarm)
        written.append(f"composite alarm {alarm['AlarmName']}")
    return written
