"""System checks for OpenTelemetry tracing and outbound propagation (``prodkit.E060``-``E064``, ``W060``-``W062``,
``W110``-``W111``).

Nothing of OpenTelemetry is imported here: installed packages are looked up with ``importlib.util.find_spec``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from django_prodkit.conf import get_config
from django_prodkit.tracing.otel.config import (
    EXPORTER_ENV,
    EXPORTERS,
    OTEL_EXTRA,
    parse_propagators,
    parse_sampler,
    split_exporters,
    unsupported_protocol,
)

#: The tracing middleware under its name and its older alias.
TRACING_MIDDLEWARE = ("django_prodkit.middleware.TracingMiddleware", "django_prodkit.middleware.XRayMiddleware")

#: The HTTP clients ``PROPAGATE_OUTBOUND`` can instrument, with the module each needs.
OUTBOUND_CLIENTS = {"requests": "requests", "httpx": "httpx", "urllib3": "urllib3"}

CHECK_IDS: dict[str, str] = {
    "prodkit.E060": "OpenTelemetry tracing is on but the otel extra is not installed.",
    "prodkit.E061": "OTEL.AWS_SIGV4 is on but botocore is not installed or no AWS region is configured.",
    "prodkit.E062": "An OpenTelemetry environment variable (OTEL_TRACES_SAMPLER, _ARG, OTEL_PROPAGATORS) is malformed.",
    "prodkit.E063": "PROPAGATE_OUTBOUND names an HTTP client django-prodkit cannot instrument.",
    "prodkit.E064": "OTEL.ENDPOINT is not an http(s) URL.",
    "prodkit.W060": "OpenTelemetry tracing is on but TracingMiddleware is not in MIDDLEWARE.",
    "prodkit.W061": "Both OTEL.ENABLED and XRAY.ENABLED are on; OpenTelemetry is used.",
    "prodkit.W062": "PROPAGATE_OUTBOUND names an HTTP client that is not installed.",
    "prodkit.W110": "OTEL_TRACES_EXPORTER names an exporter django-prodkit does not build.",
    "prodkit.W111": "The OTLP protocol variable asks for another protocol than http/protobuf.",
}


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _outbound(names: list[str]) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    unknown = [name for name in names if name not in OUTBOUND_CLIENTS]
    if unknown:
        messages.append(
            checks.Error(
                f"PRODKIT['PROPAGATE_OUTBOUND'] names clients that cannot be instrumented: {', '.join(unknown)}.",
                hint=f"Use names from: {', '.join(OUTBOUND_CLIENTS)}.",
                id="prodkit.E063",
            )
        )
    missing = [name for name in names if name in OUTBOUND_CLIENTS and not _installed(OUTBOUND_CLIENTS[name])]
    if missing:
        messages.append(
            checks.Warning(
                f"PRODKIT['PROPAGATE_OUTBOUND'] names clients that are not installed: {', '.join(missing)}.",
                hint="Install them or remove them from PROPAGATE_OUTBOUND; they are skipped.",
                id="prodkit.W062",
            )
        )
    return messages


def _enabled(config: Mapping[str, Any]) -> list[checks.CheckMessage]:
    otel = config["OTEL"]
    messages: list[checks.CheckMessage] = []
    if not (_installed("opentelemetry.sdk") and _installed("opentelemetry.exporter.otlp.proto.http")):
        messages.append(
            checks.Error(
                "OpenTelemetry tracing is on (PRODKIT['OTEL']['ENABLED'] or ENABLE_OTEL) but it is not installed.",
                hint=f"Install the extra: {OTEL_EXTRA}",
                id="prodkit.E060",
            )
        )
    if otel["AWS_SIGV4"]:
        region = otel["AWS_REGION"] or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not _installed("botocore") or not (region or _profile_region()):
            messages.append(
                checks.Error(
                    "OTEL.AWS_SIGV4 is on but botocore is not installed or no AWS region is configured.",
                    hint="pip install django-prodkit[otel,aws], and set OTEL.AWS_REGION or AWS_REGION.",
                    id="prodkit.E061",
                )
            )
    for parse in (parse_sampler, parse_propagators):
        try:
            parse(os.environ)
        except ValueError as exc:
            messages.append(
                checks.Error(
                    str(exc), hint="See the environment variables in the settings reference.", id="prodkit.E062"
                )
            )
    messages.extend(_exporters())
    if otel["ENDPOINT"] and urlsplit(otel["ENDPOINT"]).scheme not in ("http", "https"):
        messages.append(
            checks.Error(
                f"PRODKIT['OTEL']['ENDPOINT'] = {otel['ENDPOINT']!r} is not an http(s) URL.",
                hint="Give the full traces URL, e.g. http://otel-collector:4318/v1/traces.",
                id="prodkit.E064",
            )
        )
    if not set(TRACING_MIDDLEWARE) & set(getattr(settings, "MIDDLEWARE", None) or []):
        messages.append(
            checks.Warning(
                f"OpenTelemetry tracing is on but {TRACING_MIDDLEWARE[0]} is not in MIDDLEWARE: nothing is traced.",
                hint="Add it after RequestIDMiddleware, HealthCheckMiddleware and MetricsMiddleware, above Django's.",
                id="prodkit.W060",
            )
        )
    if config["XRAY"]["ENABLED"]:
        messages.append(
            checks.Warning(
                "Both OTEL.ENABLED and XRAY.ENABLED are on; only OpenTelemetry traces requests.",
                hint="Turn one off (ENABLE_XRAY=false); the collector can still send to X-Ray.",
                id="prodkit.W061",
            )
        )
    return messages


def _exporters() -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    unknown = split_exporters(os.environ)[1]
    if unknown:
        messages.append(
            checks.Warning(
                f"{EXPORTER_ENV} names exporters django-prodkit does not build, which are skipped: "
                f"{', '.join(unknown)}.",
                hint=f"Use a comma list of {', '.join(EXPORTERS)}; a collector can forward to other backends.",
                id="prodkit.W110",
            )
        )
    protocol = unsupported_protocol(os.environ)
    if protocol:
        messages.append(
            checks.Warning(
                f"{protocol}: django-prodkit exports OTLP over HTTP with protobuf only, and does.",
                hint="Point the endpoint at the collector's OTLP/HTTP port (4318) and unset the variable.",
                id="prodkit.W111",
            )
        )
    return messages


def _profile_region() -> bool:
    if not _installed("botocore"):
        return False
    from botocore.session import get_session

    return bool(get_session().get_config_variable("region"))


def check_otel(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """OpenTelemetry's extra, variables, endpoint and middleware when it is on; PROPAGATE_OUTBOUND always."""
    try:
        config = get_config()
    except ImproperlyConfigured:
        return []  # prodkit.E002/E003 report it
    messages = _outbound(list(config["PROPAGATE_OUTBOUND"]))
    if config["OTEL"]["ENABLED"]:
        messages.extend(_enabled(config))
    return messages


def register() -> None:
    """Register the OpenTelemetry checks (called from :func:`django_prodkit.checks.register_all`)."""
    checks.register(check_otel, "prodkit")
