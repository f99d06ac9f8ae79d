"""The OTLP metrics exporter's settings: ``PRODKIT["OTLP_METRICS"]`` plus the standard ``OTEL_*`` variables.

Nothing of OpenTelemetry is imported here, so the system checks can validate a configuration without it.
A value set in ``PRODKIT`` wins over its variable; a variable that is set but malformed is an error that names
it (``ValueError`` here, ``prodkit.E142`` from the checks), never a silent default.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

EXPORTER_ENV = "OTEL_METRICS_EXPORTER"
METRICS_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
METRICS_HEADERS_ENV = "OTEL_EXPORTER_OTLP_METRICS_HEADERS"
HEADERS_ENV = "OTEL_EXPORTER_OTLP_HEADERS"
METRICS_TIMEOUT_ENV = "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"
TIMEOUT_ENV = "OTEL_EXPORTER_OTLP_TIMEOUT"
METRICS_COMPRESSION_ENV = "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION"
COMPRESSION_ENV = "OTEL_EXPORTER_OTLP_COMPRESSION"
INTERVAL_ENV = "OTEL_METRIC_EXPORT_INTERVAL"
TEMPORALITY_ENV = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
METRICS_PROTOCOL_ENV = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"
PROTOCOL_ENV = "OTEL_EXPORTER_OTLP_PROTOCOL"
#: The only OTLP transport the exporter speaks.
PROTOCOL = "http/protobuf"

OTEL_EXTRA = "pip install django-prodkit[otel]"
#: The modules the exporter needs: the protobuf classes, the SDK's resource and the HTTP client (all in the extra).
REQUIRED_MODULES = (
    "opentelemetry.proto.collector.metrics.v1.metrics_service_pb2",
    "opentelemetry.sdk.resources",
    "requests",
)

CUMULATIVE = "cumulative"
DELTA = "delta"
#: ``lowmemory`` asks for delta counters and histograms, which is every instrument the kit has.
TEMPORALITIES = {"cumulative": CUMULATIVE, "delta": DELTA, "lowmemory": DELTA}

#: ``OTEL_METRICS_EXPORTER`` values: ``otlp`` turns the export on, ``none`` off; the SDK's other exporters are
#: not the kit's (the metrics endpoint already serves Prometheus) and are ignored with a warning.
OTHER_EXPORTERS = frozenset({"console", "prometheus", "logging"})
COMPRESSIONS = ("none", "gzip", "deflate")

DEFAULT_ENDPOINT = "http://localhost:4318/v1/metrics"
#: CloudWatch's OTLP metrics endpoint; its SigV4 service is ``monitoring``.
CLOUDWATCH_OTLP_ENDPOINT = "https://monitoring.{region}.amazonaws.com/v1/metrics"
SIGV4_SERVICE = "monitoring"
METRICS_PATH = "v1/metrics"
DEFAULT_INTERVAL = 60.0
#: Seconds, as OpenTelemetry Python's exporters read these variables (the traces share them).
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class ExportSettings:
    """Everything the exporter needs, resolved once from ``PRODKIT`` and the environment."""

    enabled: bool
    ignored_exporters: tuple[str, ...]
    #: ``NAME=value`` of a protocol variable that asks for another transport than http/protobuf, else ``None``.
    other_protocol: str | None
    endpoint: str | None
    headers: tuple[tuple[str, str], ...]
    timeout: float
    interval: float
    temporality: str
    compression: str
    sigv4: bool
    region: str | None
    buffer_size: int
    service_name: str
    instance: str

    def endpoint_for(self, region: str | None) -> str:
        """The metrics URL: the setting, the variables, CloudWatch's for SigV4, else a local collector."""
        if self.endpoint:
            return self.endpoint
        if self.sigv4 and region:
            return CLOUDWATCH_OTLP_ENDPOINT.format(region=region)
        return DEFAULT_ENDPOINT


def _first(environ: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    for name in names:
        raw = environ.get(name, "").strip()
        if raw:
            return name, raw
    return None


def parse_exporters(environ: Mapping[str, str]) -> tuple[bool | None, tuple[str, ...]]:
    """``OTEL_METRICS_EXPORTER``: on (``otlp``), off (``none``) or unset (``None``), and the names ignored."""
    raw = environ.get(EXPORTER_ENV, "").strip().lower()
    if not raw:
        return None, ()
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in {"otlp", "none"} | OTHER_EXPORTERS]
    if unknown:
        raise ValueError(f"{EXPORTER_ENV} names unknown exporters: {', '.join(unknown)} (use otlp or none).")
    ignored = tuple(name for name in names if name in OTHER_EXPORTERS)
    if "otlp" in names:
        return True, ignored
    return False, ignored


def parse_headers(raw: str, name: str) -> tuple[tuple[str, str], ...]:
    """``key=value,key2=value2`` with URL-encoded values, as the OTLP exporter specification defines it."""
    headers = []
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or any(c.isspace() or c in '()<>@,;:\\"/[]?={}' for c in key):
            # The value may be a secret: only the key is named.
            raise ValueError(f"{name} has an entry that is not key=value (key {key[:40]!r}).")
        headers.append((key.lower(), unquote(value.strip())))
    return tuple(headers)


def _positive(name: str, raw: str, scale: float) -> float:
    try:
        number = float(raw)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name}={raw!r} is not a positive number.")
    return number * scale


def _endpoint(environ: Mapping[str, str]) -> str | None:
    if raw := environ.get(METRICS_ENDPOINT_ENV, "").strip():
        return raw
    if raw := environ.get(ENDPOINT_ENV, "").strip():
        return f"{raw.removesuffix('/')}/{METRICS_PATH}"
    return None


def resolve(config: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> ExportSettings:
    """The settings from ``PRODKIT`` and the environment; ``ValueError`` names a malformed variable."""
    section = config["OTLP_METRICS"]
    switch, ignored = parse_exporters(environ)
    found = _first(environ, METRICS_HEADERS_ENV, HEADERS_ENV)
    headers = parse_headers(found[1], found[0]) if found else ()
    found = _first(environ, METRICS_TIMEOUT_ENV, TIMEOUT_ENV)
    timeout = _positive(found[0], found[1], 1.0) if found else DEFAULT_TIMEOUT
    if section["BUFFER_SIZE"] < 1 or (section["INTERVAL"] is not None and not section["INTERVAL"] > 0):
        raise ValueError("PRODKIT['OTLP_METRICS'] INTERVAL and BUFFER_SIZE must be positive.")
    interval = section["INTERVAL"]
    if interval is None:
        raw = environ.get(INTERVAL_ENV, "").strip()
        interval = _positive(INTERVAL_ENV, raw, 0.001) if raw else DEFAULT_INTERVAL
    temporality = section["TEMPORALITY"] or environ.get(TEMPORALITY_ENV, "").strip() or CUMULATIVE
    if temporality.lower() not in TEMPORALITIES:
        raise ValueError(f"{TEMPORALITY_ENV}={temporality!r} is not one of {', '.join(TEMPORALITIES)}.")
    found = _first(environ, METRICS_COMPRESSION_ENV, COMPRESSION_ENV)
    compression = found[1].lower() if found else "none"
    if compression not in COMPRESSIONS:
        raise ValueError(f"{found and found[0]}={compression!r} is not one of {', '.join(COMPRESSIONS)}.")
    found = _first(environ, METRICS_PROTOCOL_ENV, PROTOCOL_ENV)
    return ExportSettings(
        enabled=section["ENABLED"] if switch is None else switch,
        ignored_exporters=ignored,
        other_protocol=f"{found[0]}={found[1]}" if found and found[1].lower() != PROTOCOL else None,
        endpoint=section["ENDPOINT"] or _endpoint(environ),
        headers=headers,
        timeout=timeout,
        interval=float(interval),
        temporality=TEMPORALITIES[temporality.lower()],
        compression=compression,
        sigv4=section["AWS_SIGV4"],
        region=section["AWS_REGION"],
        buffer_size=section["BUFFER_SIZE"],
        service_name=config["OTEL"]["SERVICE_NAME"] or config["SERVICE_NAME"],
        instance=config["METRICS_INSTANCE"],
    )


def safe_url(url: str) -> str:
    """``url`` without credentials, query or fragment, for log lines."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"
