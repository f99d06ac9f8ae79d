"""A CloudWatch dashboard and alarms for the published metrics, as ``PutDashboard``/``PutMetricAlarm`` input."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PERIOD_SECONDS = 60
PERCENTILES = ("p50", "p95", "p99")
_STATUS_METRICS = ("Status2xx", "Status3xx", "Status4xx", "Status5xx")
_WIDTH = 12
_HEIGHT = 6


@dataclass(frozen=True)
class DashboardOptions:
    """What the dashboard and alarms are for, and the alarm thresholds."""

    namespace: str
    service: str
    region: str
    dimensions: tuple[tuple[str, str], ...] = ()
    dashboard_name: str = ""
    error_rate_percent: float = 1.0
    include_4xx: bool = False
    p95_ms: float = 500.0
    errors_5xx_per_minute: float = 10.0
    evaluation_periods: int = 5
    datapoints_to_alarm: int = 3
    top_endpoints: int = 10
    alarm_actions: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        """The dashboard name (default: the service name)."""
        return self.dashboard_name or self.service


def _dimension_pairs(options: DashboardOptions) -> list[tuple[str, str]]:
    return [("Service", options.service), *options.dimensions]


def _widget_metric(options: DashboardOptions, metric: str, **render: Any) -> list[Any]:
    flat: list[Any] = [options.namespace, metric]
    for name, value in _dimension_pairs(options):
        flat.extend([name, value])
    return [*flat, render] if render else flat


def _metric_widget(
    options: DashboardOptions, title: str, metrics: list[list[Any]], x: int, y: int, width: int = _WIDTH, **extra: Any
) -> dict[str, Any]:
    properties = {
        "title": title,
        "region": options.region,
        "view": "timeSeries",
        "period": PERIOD_SECONDS,
        "metrics": metrics,
        **extra,
    }
    return {"type": "metric", "x": x, "y": y, "width": width, "height": _HEIGHT, "properties": properties}


def _search(options: DashboardOptions, metric: str) -> str:
    """A SEARCH over the per-endpoint series of one metric of this service."""
    keys = [f'"{options.namespace}"', *(name for name, _ in _dimension_pairs(options)), "Endpoint", "Method"]
    filters = " ".join(f'{name}="{value}"' for name, value in _dimension_pairs(options))
    return f"SEARCH('{{{','.join(keys)}}} MetricName=\"{metric}\" {filters}', 'Sum', {PERIOD_SECONDS})"


def dashboard_body(options: DashboardOptions) -> dict[str, Any]:
    """The dashboard: request rate, p50/p95/p99, status classes, error rate and the top endpoints."""
    errors = "m5xx + m4xx" if options.include_4xx else "m5xx"
    top = f"SORT({_search(options, 'RequestCount')}, SUM, DESC, {options.top_endpoints})"
    widgets = [
        _metric_widget(
            options,
            "Requests per minute",
            [_widget_metric(options, "RequestCount", stat="Sum", label="requests")],
            0,
            0,
        ),
        _metric_widget(
            options,
            "Response time (ms)",
            [_widget_metric(options, "ResponseTime", stat=p, label=p) for p in PERCENTILES],
            _WIDTH,
            0,
        ),
        _metric_widget(
            options,
            "Responses by status class",
            [_widget_metric(options, metric, stat="Sum", label=metric[-3:]) for metric in _STATUS_METRICS],
            0,
            _HEIGHT,
            stacked=True,
        ),
        _metric_widget(
            options,
            "Error rate (%)",
            [
                [{"expression": f"100 * ({errors}) / requests", "label": "error rate", "id": "rate"}],
                _widget_metric(options, "Status5xx", stat="Sum", id="m5xx", visible=False),
                _widget_metric(options, "Status4xx", stat="Sum", id="m4xx", visible=False),
                _widget_metric(options, "RequestCount", stat="Sum", id="requests", visible=False),
            ],
            _WIDTH,
            _HEIGHT,
        ),
        _metric_widget(
            options,
            f"Top {options.top_endpoints} endpoints (requests per minute)",
            [[{"expression": top, "label": "", "id": "top"}]],
            0,
            2 * _HEIGHT,
            width=2 * _WIDTH,
        ),
    ]
    return {"widgets": widgets}


def _metric(options: DashboardOptions, metric: str) -> dict[str, Any]:
    return {
        "Namespace": options.namespace,
        "MetricName": metric,
        "Dimensions": [{"Name": name, "Value": value} for name, value in _dimension_pairs(options)],
    }


def _alarm_common(options: DashboardOptions, name: str, description: str) -> dict[str, Any]:
    return {
        "AlarmName": f"{options.service}-{name}",
        "AlarmDescription": description,
        "ActionsEnabled": bool(options.alarm_actions),
        "AlarmActions": list(options.alarm_actions),
        "OKActions": list(options.alarm_actions),
        "ComparisonOperator": "GreaterThanThreshold",
        # No traffic is not an incident: missing data keeps the alarm OK.
        "TreatMissingData": "notBreaching",
    }


def alarms(options: DashboardOptions) -> list[dict[str, Any]]:
    """The ``PutMetricAlarm`` requests: error rate, p95 response time, 5xx per minute."""
    classes = "4xx and 5xx" if options.include_4xx else "5xx"
    errors = "m5xx + m4xx" if options.include_4xx else "m5xx"
    sustained = {"EvaluationPeriods": options.evaluation_periods, "DatapointsToAlarm": options.datapoints_to_alarm}
    queries: list[dict[str, Any]] = [
        {"Id": "rate", "Expression": f"100 * ({errors}) / requests", "Label": "error rate (%)", "ReturnData": True},
    ]
    for query_id, metric in (("m5xx", "Status5xx"), ("m4xx", "Status4xx"), ("requests", "RequestCount")):
        if query_id == "m4xx" and not options.include_4xx:
            continue
        queries.append(
            {
                "Id": query_id,
                "MetricStat": {"Metric": _metric(options, metric), "Period": PERIOD_SECONDS, "Stat": "Sum"},
                "ReturnData": False,
            }
        )
    return [
        {
            **_alarm_common(
                options, "error-rate", f"More than {options.error_rate_percent} % of responses are {classes}."
            ),
            "Metrics": queries,
            "Threshold": options.error_rate_percent,
            **sustained,
        },
        {
            **_alarm_common(options, "p95-response-time", f"p95 response time above {options.p95_ms} ms."),
            **_metric(options, "ResponseTime"),
            "ExtendedStatistic": "p95",
            "Period": PERIOD_SECONDS,
            "Unit": "Milliseconds",
            "Threshold": options.p95_ms,
            **sustained,
        },
        {
            **_alarm_common(
                options, "5xx-per-minute", f"More than {options.errors_5xx_per_minute:g} 5xx responses in a minute."
            ),
            **_metric(options, "Status5xx"),
            "Statistic": "Sum",
            "Period": PERIOD_SECONDS,
            "Threshold": options.errors_5xx_per_minute,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
        },
    ]


def render(options: DashboardOptions) -> dict[str, Any]:
    """Everything as one JSON-ready dict: ``{"dashboard": PutDashboard input, "alarms": [PutMetricAlarm input]}``."""
    return {
        "dashboard": {"DashboardName": options.name, "DashboardBody": json.dumps(dashboard_body(options))},
        "alarms": alarms(options),
    }


def apply(document: dict[str, Any], client: Any) -> list[str]:
    """Create or update the dashboard and alarms with a boto3 CloudWatch client; return what was written."""
    client.put_dashboard(**document["dashboard"])
    written = [f"dashboard {document['dashboard']['DashboardName']}"]
    for alarm in document["alarms"]:
        client.put_metric_alarm(**alarm)
        written.append(f"alarm {alarm['AlarmName']}")
    return written
