"""System checks for ``PRODKIT["CLOUDWATCH"]`` (ids ``prodkit.E040``-``E049``, ``W040``-``W049`` and ``W150``)."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping, Sequence
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from django_prodkit.cloudwatch.config import (
    INSTANCE_DIMENSION,
    MAX_DIMENSION_VALUE,
    MAX_EXTRA_DIMENSIONS,
    MODES,
    RESERVED_DIMENSIONS,
)
from django_prodkit.conf import get_config
from django_prodkit.stack import index_of

CHECK_IDS: dict[str, str] = {
    "prodkit.E040": "CLOUDWATCH.MODE is neither 'emf' nor 'api'.",
    "prodkit.E041": "CLOUDWATCH.MODE is 'api' but boto3 is not installed.",
    "prodkit.E042": "CLOUDWATCH.FLUSH_INTERVAL is not between 0 and 3600 seconds.",
    "prodkit.E043": "CLOUDWATCH.BUFFER_SIZE is below 1.",
    "prodkit.E044": "CLOUDWATCH.NAMESPACE is not a valid CloudWatch namespace.",
    "prodkit.E045": "CLOUDWATCH.DIMENSIONS is not a small dict of non-empty strings.",
    "prodkit.E046": "The CloudWatch service name is empty or too long for a dimension.",
    "prodkit.E047": "CLOUDWATCH.API_TIMEOUT is not a positive number of seconds.",
    "prodkit.W040": "CloudWatch is enabled but MetricsMiddleware is not in MIDDLEWARE.",
    "prodkit.W041": "CLOUDWATCH.MODE is 'api' but boto3 finds no AWS region.",
    "prodkit.W150": "METRICS_INSTANCE gives CloudWatch metrics a per-instance dimension: fixed alarms see no data.",
}

METRICS_MIDDLEWARE = "django_prodkit.middleware.MetricsMiddleware"
MAX_FLUSH_INTERVAL = 3600
MAX_NAMESPACE = 255
MAX_DIMENSION_NAME = 255


def _dimension_errors(dimensions: Mapping[Any, Any] | None) -> list[str]:
    if not dimensions:
        return []
    if len(dimensions) > MAX_EXTRA_DIMENSIONS:
        return [f"{len(dimensions)} dimensions, at most {MAX_EXTRA_DIMENSIONS} fit beside Service, Endpoint, Method"]
    problems = []
    for name, value in dimensions.items():
        if not isinstance(name, str) or not name or len(name) > MAX_DIMENSION_NAME or name.startswith(":"):
            problems.append(f"name {name!r} must be 1-{MAX_DIMENSION_NAME} characters not starting with ':'")
        elif name in RESERVED_DIMENSIONS:
            problems.append(f"name {name!r} is set by django-prodkit")
        if not isinstance(value, str) or not value or len(value) > MAX_DIMENSION_VALUE:
            problems.append(f"value of {name!r} must be a string of 1-{MAX_DIMENSION_VALUE} characters")
    return problems


def _has_region() -> bool:
    import boto3

    return bool(boto3.session.Session().region_name)


def _error(message: str, hint: str, check_id: str) -> checks.CheckMessage:
    return checks.Error(message, hint=hint, id=check_id)


def check_cloudwatch(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The CloudWatch settings are usable (checked whether or not publishing is enabled)."""
    try:
        config = get_config()
    except ImproperlyConfigured:
        return []  # reported by check_settings
    cw = config["CLOUDWATCH"]
    messages: list[checks.CheckMessage] = []
    if cw["MODE"] not in MODES:
        messages.append(
            _error(f"PRODKIT['CLOUDWATCH']['MODE'] = {cw['MODE']!r}.", "Use 'emf' or 'api'.", "prodkit.E040")
        )
    boto3_missing = importlib.util.find_spec("boto3") is None
    if cw["MODE"] == "api" and boto3_missing:
        messages.append(_error("CloudWatch 'api' mode needs boto3.", "pip install django-prodkit[aws]", "prodkit.E041"))
    interval = cw["FLUSH_INTERVAL"]
    if not (math.isfinite(interval) and 0 < interval <= MAX_FLUSH_INTERVAL):
        messages.append(
            _error(
                f"PRODKIT['CLOUDWATCH']['FLUSH_INTERVAL'] = {interval!r}.",
                f"Use seconds above 0 and at most {MAX_FLUSH_INTERVAL}; 60 matches CloudWatch's standard resolution.",
                "prodkit.E042",
            )
        )
    if cw["BUFFER_SIZE"] < 1:
        messages.append(
            _error(
                f"PRODKIT['CLOUDWATCH']['BUFFER_SIZE'] = {cw['BUFFER_SIZE']!r}.",
                "Use the number of series (endpoint x method x interval) to keep while CloudWatch is down.",
                "prodkit.E043",
            )
        )
    if not (math.isfinite(cw["API_TIMEOUT"]) and cw["API_TIMEOUT"] > 0):
        messages.append(
            _error(
                f"PRODKIT['CLOUDWATCH']['API_TIMEOUT'] = {cw['API_TIMEOUT']!r}.",
                "Use the seconds one PutMetricData call may take, e.g. 5.",
                "prodkit.E047",
            )
        )
    namespace = cw["NAMESPACE"]
    if not namespace or len(namespace) > MAX_NAMESPACE or namespace.startswith(("AWS/", ":")):
        messages.append(
            _error(
                f"PRODKIT['CLOUDWATCH']['NAMESPACE'] = {namespace!r} is not a valid custom namespace.",
                f"Use 1-{MAX_NAMESPACE} characters, not starting with 'AWS/' or ':'.",
                "prodkit.E044",
            )
        )
    messages.extend(
        _error(f"PRODKIT['CLOUDWATCH']['DIMENSIONS']: {problem}.", "Use {'Environment': 'production'}.", "prodkit.E045")
        for problem in _dimension_errors(cw["DIMENSIONS"])
    )
    service = cw["SERVICE_NAME"] if cw["SERVICE_NAME"] is not None else config["SERVICE_NAME"]
    if not service or len(service) > MAX_DIMENSION_VALUE:
        messages.append(
            _error(
                f"The CloudWatch service name {service!r} is not a valid dimension value.",
                f"Set PRODKIT['SERVICE_NAME'] or CLOUDWATCH.SERVICE_NAME to 1-{MAX_DIMENSION_VALUE} characters.",
                "prodkit.E046",
            )
        )
    if cw["ENABLED"] and index_of(METRICS_MIDDLEWARE) is None:
        messages.append(
            checks.Warning(
                "CloudWatch publishing is enabled but no request is measured.",
                hint=f"Add {METRICS_MIDDLEWARE!r} to MIDDLEWARE.",
                id="prodkit.W040",
            )
        )
    if cw["ENABLED"] and cw["MODE"] == "api" and not boto3_missing and not cw["REGION"] and not _has_region():
        messages.append(
            checks.Warning(
                "CloudWatch 'api' mode is enabled but boto3 finds no AWS region.",
                hint="Set AWS_DEFAULT_REGION (or a region in the AWS profile) or PRODKIT['CLOUDWATCH']['REGION'].",
                id="prodkit.W041",
            )
        )
    messages.extend(_alarm_dimension_warnings(cw, config["METRICS_INSTANCE"]))
    return messages


def _alarm_dimension_warnings(cw: Mapping[str, Any], instance: str) -> list[checks.CheckMessage]:
    """An ``Instance`` dimension differs per process, so no fixed alarm matches the service-wide series any more."""
    if not cw["ENABLED"] or not instance:
        return []
    names = ", ".join(["Service", *sorted({*(cw["DIMENSIONS"] or {}), INSTANCE_DIMENSION})])
    return [
        checks.Warning(
            f"CloudWatch metrics are published with the dimensions {names}, and Instance "
            f"({INSTANCE_DIMENSION}={instance[:40]!r}) differs per instance: an alarm or graph on the service's "
            "dimensions without it (like the example's Terraform) matches no series and never fires.",
            hint=(
                "Leave METRICS_INSTANCE (PRODKIT_METRICS_INSTANCE) unset where CloudWatch alarms watch the service, "
                "or alarm on a SEARCH() expression over all instances; silence prodkit.W150 once they do."
            ),
            id="prodkit.W150",
        )
    ]


def register() -> None:
    """Register the CloudWatch checks (called from :func:`django_prodkit.checks.register_all`)."""
    checks.register(check_cloudwatch, "prodkit")
