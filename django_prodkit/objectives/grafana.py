"""A Grafana dashboard for the kit's Prometheus metrics and the declared objectives' budgets and burn rates."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django_prodkit.objectives.declaration import WINDOW_PAIRS, Declaration, Objective
from django_prodkit.objectives.prometheus import (
    BUDGET_REMAINING,
    DURATION_BUCKET,
    ERROR_RATIO,
    REQUESTS,
    matchers,
    series,
)

SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: Grafana's rate window: at least four scrape intervals, whatever the zoom.
RATE = "$__rate_interval"
_WIDTH = 12
_HEIGHT = 8
PERCENTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Panel:
    """One panel: its queries as (PromQL, legend), its unit and whether it is a single figure."""

    title: str
    queries: tuple[tuple[str, str], ...]
    unit: str = "short"
    stat: bool = False
    #: What must have happened for the panel to show data: "requests", "errors" (5xx) or "tasks".
    needs: str = "requests"


def _service_panels(declaration: Declaration) -> Iterator[Panel]:
    selector = matchers(declaration, None)
    errors = matchers(declaration, None, 'status=~"5.."')
    by_route = "sum by (method, route)"
    yield Panel(
        "Requests per second by route",
        ((f"{by_route} (rate({REQUESTS}{selector}[{RATE}]))", "{{method}} {{route}}"),),
        "reqps",
    )
    yield Panel(
        "5xx per second by route",
        ((f"{by_route} (rate({REQUESTS}{errors}[{RATE}]))", "{{method}} {{route}}"),),
        "reqps",
        needs="errors",
    )
    yield Panel(
        "Responses per second by status",
        ((f"sum by (status) (rate({REQUESTS}{selector}[{RATE}]))", "{{status}}"),),
        "reqps",
    )
    yield Panel(
        "Response time percentiles",
        tuple(
            (f"histogram_quantile({q}, sum by (le) (rate({DURATION_BUCKET}{selector}[{RATE}])))", f"p{q * 100:g}")
            for q in PERCENTILES
        ),
        "s",
    )
    yield Panel(
        "p95 response time by route",
        (
            (
                f"histogram_quantile(0.95, sum by (le, method, route) (rate({DURATION_BUCKET}{selector}[{RATE}])))",
                "{{method}} {{route}}",
            ),
        ),
        "s",
    )
    yield Panel(
        "Database queries per request by route",
        (
            (
                f"{by_route} (rate(prodkit_http_request_db_queries_sum{selector}[{RATE}]))\n"
                f"/ {by_route} (rate(prodkit_http_request_db_queries_count{selector}[{RATE}]))",
                "{{method}} {{route}}",
            ),
        ),
    )
    yield Panel(
        "Task runs per second by outcome",
        ((f"sum by (task, outcome) (rate(prodkit_tasks_total{selector}[{RATE}]))", "{{task}} {{outcome}}"),),
        "ops",
        needs="tasks",
    )
    yield Panel(
        "Task duration p95",
        (
            (
                f"histogram_quantile(0.95, sum by (le, task) (rate(prodkit_task_duration_seconds_bucket{selector}"
                f"[{RATE}])))",
                "{{task}}",
            ),
        ),
        "s",
        needs="tasks",
    )


def _objective_panels(declaration: Declaration, objective: Objective) -> Iterator[Panel]:
    days = declaration.window_days
    yield Panel(
        f"{objective.name}: error budget left ({days} days)",
        ((series(BUDGET_REMAINING, objective), "budget left"),),
        "percentunit",
        stat=True,
    )
    windows = sorted({p.long for p in WINDOW_PAIRS}, key=[p.long for p in WINDOW_PAIRS].index)
    yield Panel(
        f"{objective.name}: burn rate (page above {WINDOW_PAIRS[0].factor(days):g}x over 1h)",
        tuple((f"{series(ERROR_RATIO + w, objective)} / {objective.budget!r}", w) for w in windows),
        "x",
    )
    yield Panel(
        f"{objective.name}: good requests (objective {objective.target:g} %)",
        ((f"1 - {series(ERROR_RATIO + '5m', objective)}", "last 5 minutes"),),
        "percentunit",
    )


def panels(declaration: Declaration) -> list[Panel]:
    """Every panel, service-wide first, then three per objective."""
    result = list(_service_panels(declaration))
    for objective in declaration.objectives:
        result.extend(_objective_panels(declaration, objective))
    return result


def _panel_json(panel: Panel, index: int, y: int, x: int) -> dict[str, Any]:
    return {
        "id": index + 1,
        "type": "stat" if panel.stat else "timeseries",
        "title": panel.title,
        "datasource": DATASOURCE,
        "gridPos": {"h": _HEIGHT, "w": _WIDTH, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": [
            {"refId": chr(ord("A") + n), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for n, (expr, legend) in enumerate(panel.queries)
        ],
    }


def dashboard(declaration: Declaration) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (Dashboards > New > Import, or provisioning)."""
    body = [_panel_json(panel, n, (n // 2) * _HEIGHT, (n % 2) * _WIDTH) for n, panel in enumerate(panels(declaration))]
    return {
        "title": f"{declaration.service}: django-prodkit",
        "uid": f"prodkit-{declaration.service}"[:40],
        "tags": ["django-prodkit"],
        "timezone": "browser",
        "schemaVersion": SCHEMA_VERSION,
        "editable": True,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                }
            ]
        },
        "panels": body,
    }
