"""System checks for the metrics over OTLP (``prodkit.E140``-``E144``, ``W140``-``W142``).

Nothing of OpenTelemetry is imported here: installed packages are looked up with ``importlib.util.find_spec``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from django_prodkit.conf import get_config
from django_prodkit.metrics.otlp.config import OTEL_EXTRA, REQUIRED_MODULES, ExportSettings, resolve
from django_prodkit.stack import index_of, installed_middleware

METRICS_MIDDLEWARE = "django_prodkit.middleware.MetricsMiddleware"

CHECK_IDS: dict[str, str] = {
    "prodkit.E140": "The OTLP metrics export is on but the otel extra is not installed.",
    "prodkit.E141": "OTLP_METRICS.AWS_SIGV4 is on but botocore is not installed or no AWS region is configured.",
    "prodkit.E142": "A metrics export variable (OTEL_METRICS_EXPORTER, OTEL_EXPORTER_OTLP_METRICS_*) is malformed.",
    "prodkit.E143": "The OTLP metrics endpoint is not an http(s) URL.",
    "prodkit.E144": "OTLP_METRICS.INTERVAL or OTLP_METRICS.BUFFER_SIZE is not positive.",
    "prodkit.W140": "OTEL_METRICS_EXPORTER names an exporter the kit does not provide; it is ignored.",
    "prodkit.W141": "The OTLP metrics export is on but MetricsMiddleware is not in MIDDLEWARE.",
    "prodkit.W142": "An OTLP protocol variable asks for another transport than http/protobuf for the metrics.",
}


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _has_region(settings: ExportSettings) -> bool:
    if settings.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"):
        return True
    from botocore.session import get_session

    return bool(get_session().get_config_variable("region"))


def _enabled(settings: ExportSettings) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    if not all(_installed(module) for module in REQUIRED_MODULES):
        messages.append(
            checks.Error(
                "The metrics export over OTLP is on but its packages are not installed.",
                hint=f"Install the extra: {OTEL_EXTRA}",
                id="prodkit.E140",
            )
        )
    if settings.sigv4 and not (_installed("botocore") and _has_region(settings)):
        messages.append(
            checks.Error(
                "OTLP_METRICS.AWS_SIGV4 is on but botocore is not installed or no AWS region is configured.",
                hint="pip install django-prodkit[otel,aws], and set OTLP_METRICS.AWS_REGION or AWS_REGION.",
                id="prodkit.E141",
            )
        )
    if settings.endpoint and urlsplit(settings.endpoint).scheme not in ("http", "https"):
        messages.append(
            checks.Error(
                "The OTLP metrics endpoint (OTLP_METRICS.ENDPOINT or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) "
                "is not an http(s) URL.",
                hint="Give the full metrics URL, e.g. http://otel-collector:4318/v1/metrics.",
                id="prodkit.E143",
            )
        )
    if settings.other_protocol:
        messages.append(
            checks.Warning(
                f"{settings.other_protocol}: the metrics are exported over OTLP/HTTP with protobuf only.",
                hint="Point the endpoint at the collector's OTLP/HTTP port (4318), not gRPC's (4317), "
                "or set OTEL_EXPORTER_OTLP_METRICS_PROTOCOL=http/protobuf.",
                id="prodkit.W142",
            )
        )
    if index_of(METRICS_MIDDLEWARE, installed_middleware()) is None:
        messages.append(
            checks.Warning(
                f"The OTLP metrics export is on but {METRICS_MIDDLEWARE} is not in MIDDLEWARE: nothing is counted "
                "or exported.",
                hint="Add it after RequestIDMiddleware (see the Metrics docs).",
                id="prodkit.W141",
            )
        )
    return messages


def _section_messages(config: Mapping[str, Any]) -> list[checks.CheckMessage]:
    section = config["OTLP_METRICS"]
    if section["BUFFER_SIZE"] >= 1 and (section["INTERVAL"] is None or section["INTERVAL"] > 0):
        return []
    return [
        checks.Error(
            "PRODKIT['OTLP_METRICS'] INTERVAL and BUFFER_SIZE must be positive.",
            hint="Use e.g. INTERVAL = 60.0 (seconds) and BUFFER_SIZE = 10 (exports kept while the endpoint is down).",
            id="prodkit.E144",
        )
    ]


def check_otlp_metrics(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The export's packages, variables, endpoint and middleware when it is on."""
    try:
        config = get_config()
    except ImproperlyConfigured:
        return []  # prodkit.E002/E003 report it
    messages = _section_messages(config)
    if messages:
        return messages
    try:
        settings = resolve(config)
    except ValueError as exc:
        return [
            checks.Error(str(exc), hint="See the OTLP metrics variables in the settings reference.", id="prodkit.E142")
        ]
    if settings.ignored_exporters:
        messages.append(
            checks.Warning(
                f"OTEL_METRICS_EXPORTER names {', '.join(settings.ignored_exporters)}, which django-prodkit does not "
                "provide; only otlp is exported.",
                hint="The metrics endpoint serves Prometheus already; leave these names to the OpenTelemetry SDK.",
                id="prodkit.W140",
            )
        )
    if settings.enabled:
        messages.extend(_enabled(settings))
    return messages


def register() -> None:
    """Register the checks (called from ``django_prodkit.metrics.checks.register``)."""
    checks.register(check_otlp_metrics, "prodkit")
