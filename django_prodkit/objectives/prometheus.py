"""Prometheus recording and multiwindow, multi-burn-rate alerting rules for the declared objectives."""

from __future__ import annotations

from typing import Any

from django_prodkit.objectives.declaration import (
    AVAILABILITY,
    PAGE,
    SEVERITIES,
    WINDOW_PAIRS,
    WINDOW_SECONDS,
    Declaration,
    Objective,
)

REQUESTS = "prodkit_http_requests_total"
DURATION_BUCKET = "prodkit_http_request_duration_seconds_bucket"
DURATION_COUNT = "prodkit_http_request_duration_seconds_count"
ERROR_RATIO = "prodkit_slo:error_ratio:rate"
REQUESTS_IN = "prodkit_slo:requests:increase"
BUDGET_REMAINING = "prodkit_slo:error_budget_remaining:ratio"
ALERT_NAME = "ErrorBudgetBurn"
#: How often the whole-window figures for the dashboard (a rate over 28 or 30 days, costly) are recomputed: less
#: often than the other rules, yet within Prometheus's 5-minute lookback so a panel never goes blank.
BUDGET_INTERVAL = "2m"
#: Every window a pair uses, shortest first.
WINDOWS = sorted({p.short for p in WINDOW_PAIRS} | {p.long for p in WINDOW_PAIRS}, key=WINDOW_SECONDS.__getitem__)
LONG_WINDOWS = [w for w in WINDOWS if any(p.long == w for p in WINDOW_PAIRS)]
_ONE_DECIMAL = 'printf "%.1f"'
_REGEX_SPECIAL = frozenset("\\.+*?()|[]{}^$")


def quote(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _regex(values: Any) -> str:
    return "|".join("".join(f"\\{c}" if c in _REGEX_SPECIAL else c for c in v) for v in values)


def _le_values(edge: float) -> list[str]:
    # prometheus_client writes repr(1.0) = "1.0"; Prometheus 3 normalises bucket labels to "1" on ingestion.
    values = [repr(edge)]
    if edge.is_integer():
        values.append(str(int(edge)))
    return values


def matchers(declaration: Declaration, objective: Objective | None, *extra: str) -> str:
    """The label matchers that pick the service's (and the objective's routes') series."""
    parts = [declaration.selector] if declaration.selector else []
    if objective is not None and objective.routes:
        parts.append(f"route=~{quote(_regex(objective.routes))}")
    if objective is not None and objective.methods:
        parts.append(f"method=~{quote(_regex(objective.methods))}")
    parts.extend(extra)
    return "{" + ", ".join(parts) + "}" if parts else ""


def _status_regex(errors: tuple[str, ...]) -> str:
    return "|".join(e.replace("x", ".") for e in errors)


def _total_series(objective: Objective) -> str:
    return REQUESTS if objective.kind == AVAILABILITY else DURATION_COUNT


def error_ratio_expr(declaration: Declaration, objective: Objective, window: str) -> str:
    """The share of bad requests over ``window``: 5xx (or the declared errors), or slower than the edge."""
    total = f"sum(rate({_total_series(objective)}{matchers(declaration, objective)}[{window}]))"
    if objective.kind == AVAILABILITY:
        bad = matchers(declaration, objective, f"status=~{quote(_status_regex(objective.errors))}")
        return f"(sum(rate({REQUESTS}{bad}[{window}])) or vector(0)) / {total}"
    assert objective.edge is not None
    good = matchers(declaration, objective, f"le=~{quote(_regex(_le_values(objective.edge)))}")
    return f"1 - (sum(rate({DURATION_BUCKET}{good}[{window}])) or vector(0)) / {total}"


def requests_expr(declaration: Declaration, objective: Objective, window: str) -> str:
    """The number of requests the objective counts over ``window``."""
    return f"sum(increase({_total_series(objective)}{matchers(declaration, objective)}[{window}]))"


def _labels(declaration: Declaration, objective: Objective) -> dict[str, str]:
    return {"service": declaration.service, "slo": objective.name, "slo_kind": objective.kind}


def series(name: str, objective: Objective) -> str:
    """A recorded series of one objective, as a selector."""
    return f"{name}{{slo={quote(objective.name)}}}"


def _window_label(days: int) -> str:
    return f"{days}d"


def _value(query: str, fmt: str, missing: str = "unknown") -> str:
    return f"{{{{ with query {quote(query)} }}}}{{{{ . | first | value | {fmt} }}}}{{{{ else }}}}{missing}{{{{ end }}}}"


def _burn(objective: Objective, window: str) -> str:
    return f"{series(ERROR_RATIO + window, objective)} / {objective.budget!r}"


def alert_annotations(declaration: Declaration, objective: Objective, severity: str) -> dict[str, str]:
    """What the alert says: the objective, each window's burn rate against its threshold, the budget left."""
    days = declaration.window_days
    pairs = [p for p in WINDOW_PAIRS if p.severity == severity]
    conditions = "; ".join(
        f"{_value(_burn(objective, p.long), _ONE_DECIMAL)}x over {p.long} and "
        f"{_value(_burn(objective, p.short), _ONE_DECIMAL)}x over {p.short} "
        f"({severity} above {p.factor(days):g}x, which spends {p.budget_share:.0%} of the budget in {p.long})"
        for p in pairs
    )
    # Computed here rather than read from the budgets group, which runs on its own schedule; the query runs only
    # while the alert fires.
    remaining = f"1 - ({error_ratio_expr(declaration, objective, _window_label(days))}) / {objective.budget!r}"
    # sum() drops the recorded series' labels so it divides the unlabelled budget.
    burn = f"sum({series(ERROR_RATIO + pairs[0].long, objective)}) / {objective.budget!r}"
    exhaustion = f"({remaining}) * {days * 86400} / ({burn}) > 0"
    lines = [
        f"Objective {objective.name}: {objective.sentence(days)}.",
        *([objective.description] if objective.description else []),
        f"The error budget ({objective.budget:.4g} of requests) is burning at {conditions}.",
        f"Budget left: {_value(remaining, 'humanizePercentage')} of the {days}-day budget; at the {pairs[0].long} "
        f"rate it is gone in {_value(exhaustion, 'humanizeDuration', 'no time: it is already spent')}.",
    ]
    description = "\n".join(lines)
    speed = "fast: act now" if severity == PAGE else "steadily: look at it today"
    result = {
        "summary": f"{declaration.service} {objective.name}: the {days}-day error budget is burning {speed}.",
        "description": description,
    }
    runbook = declaration.runbook(objective, severity)
    if runbook:
        result["runbook_url"] = runbook
    return result


def alert_expr(declaration: Declaration, objective: Objective, severity: str) -> str:
    """Either window pair of the severity over its threshold, with enough requests in the long window."""
    clauses = []
    for pair in (p for p in WINDOW_PAIRS if p.severity == severity):
        threshold = f"({pair.factor(declaration.window_days):g} * {objective.budget!r})"
        clause = (
            f"{series(ERROR_RATIO + pair.long, objective)} > {threshold}\n"
            f"  and {series(ERROR_RATIO + pair.short, objective)} > {threshold}"
        )
        if declaration.min_requests:
            clause += f"\n  and {series(REQUESTS_IN + pair.long, objective)} >= {declaration.min_requests}"
        clauses.append(f"(\n  {clause}\n)")
    return "\nor\n".join(clauses)


def rule_groups(declaration: Declaration) -> list[dict[str, Any]]:
    """The rule groups: per objective, the ratios over every window, then its two alerts; and the budgets."""
    groups: list[dict[str, Any]] = []
    budgets: list[dict[str, Any]] = []
    window = _window_label(declaration.window_days)
    for objective in declaration.objectives:
        labels = _labels(declaration, objective)
        rules: list[dict[str, Any]] = [
            {"record": ERROR_RATIO + w, "expr": error_ratio_expr(declaration, objective, w), "labels": labels}
            for w in WINDOWS
        ]
        rules += [
            {"record": REQUESTS_IN + w, "expr": requests_expr(declaration, objective, w), "labels": labels}
            for w in LONG_WINDOWS
        ]
        rules += [
            {
                "alert": ALERT_NAME,
                "expr": alert_expr(declaration, objective, severity),
                "labels": {**labels, "severity": severity},
                "annotations": alert_annotations(declaration, objective, severity),
            }
            for severity in SEVERITIES
        ]
        groups.append({"name": f"prodkit-slo-{objective.name}", "rules": rules})
        budgets += [
            {
                "record": ERROR_RATIO + window,
                "expr": error_ratio_expr(declaration, objective, window),
                "labels": labels,
            },
            {
                "record": BUDGET_REMAINING,
                "expr": f"1 - {series(ERROR_RATIO + window, objective)} / {objective.budget!r}",
                "labels": labels,
            },
        ]
    return [*groups, {"name": "prodkit-slo-budgets", "interval": BUDGET_INTERVAL, "rules": budgets}] if budgets else []


def rule_file(declaration: Declaration) -> dict[str, Any]:
    """A Prometheus rule file (``rule_files:`` in prometheus.yml)."""
    return {"groups": rule_groups(declaration)}


def prometheus_rule(
    declaration: Declaration, namespace: str = "", labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """The same groups as a prometheus-operator ``PrometheusRule`` resource."""
    metadata: dict[str, Any] = {"name": f"{declaration.service}-slos".lower().replace("_", "-")}
    if namespace:
        metadata["namespace"] = namespace
    metadata["labels"] = {"app.kubernetes.io/name": declaration.service, **(labels or {})}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": {"groups": rule_groups(declaration)},
    }
