"""The OpenTelemetry backend's settings: ``PRODKIT["OTEL"]`` plus the standard ``OTEL_*`` variables it reads.

Nothing of OpenTelemetry is imported here, so the system checks can validate a configuration without it.
The variables the SDK and the OTLP exporter read themselves (``OTEL_EXPORTER_OTLP_*`` and their ``_TRACES_``
forms, ``OTEL_BSP_*``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``) are left to them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: The distributions the backend needs, the module that shows they are installed, and the extra.
OTEL_MODULE = "opentelemetry.sdk.trace"
EXPORTER_MODULE = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
OTEL_EXTRA = "pip install django-prodkit[otel]"

SAMPLER_ENV = "OTEL_TRACES_SAMPLER"
SAMPLER_ARG_ENV = "OTEL_TRACES_SAMPLER_ARG"
PROPAGATORS_ENV = "OTEL_PROPAGATORS"
TRACES_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
EXPORTER_ENV = "OTEL_TRACES_EXPORTER"
#: The protocol variables, the traces one first (it wins): only OTLP over HTTP with protobuf is built in.
PROTOCOL_ENVS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
PROTOCOL = "http/protobuf"

#: The values of ``OTEL_TRACES_EXPORTER`` this backend understands (a comma list of them); ``none`` exports nothing.
EXPORTERS = ("otlp", "console", "none")
DEFAULT_EXPORTERS = ("otlp",)

#: The samplers of the OpenTelemetry specification's ``OTEL_TRACES_SAMPLER`` this backend understands.
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
DEFAULT_SAMPLER = "parentbased_always_on"

#: Incoming and outgoing trace-context formats: W3C Trace Context, and X-Ray's header (ALB, CloudFront, SDKs).
PROPAGATORS = ("tracecontext", "xray", "baggage", "none")
DEFAULT_PROPAGATORS = ("tracecontext", "xray")

DEFAULT_ENDPOINT = "http://localhost:4318/v1/traces"
XRAY_OTLP_ENDPOINT = "https://xray.{region}.amazonaws.com/v1/traces"


@dataclass(frozen=True)
class OtelSettings:
    """Everything the backend needs to start, resolved once per configuration."""

    service_name: str | None
    default_service_name: str
    endpoint: str | None
    sampler: str
    ratio: float
    propagators: tuple[str, ...]
    trust_incoming: bool
    sigv4: bool
    region: str | None
    exporters: tuple[str, ...] = DEFAULT_EXPORTERS
    global_provider: bool = True
    shutdown_timeout: float = 2.0


def parse_sampler(environ: Mapping[str, str]) -> tuple[str, float]:
    """``OTEL_TRACES_SAMPLER`` and its ratio argument; ``ValueError`` names what is wrong."""
    name = environ.get(SAMPLER_ENV, "").strip().lower() or DEFAULT_SAMPLER
    if name not in SAMPLERS:
        raise ValueError(f"{SAMPLER_ENV}={name!r} is not one of {', '.join(SAMPLERS)}.")
    raw = environ.get(SAMPLER_ARG_ENV, "").strip()
    if not name.endswith("traceidratio") or not raw:
        return name, 1.0
    try:
        ratio = float(raw)
    except ValueError:
        raise ValueError(f"{SAMPLER_ARG_ENV}={raw!r} is not a number between 0 and 1.") from None
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"{SAMPLER_ARG_ENV}={raw!r} is not a number between 0 and 1.")
    return name, ratio


def parse_propagators(environ: Mapping[str, str]) -> tuple[str, ...]:
    """``OTEL_PROPAGATORS`` as a tuple of known names (``baggage`` is accepted and ignored)."""
    raw = environ.get(PROPAGATORS_ENV, "").strip()
    if not raw:
        return DEFAULT_PROPAGATORS
    names = tuple(name.strip().lower() for name in raw.split(",") if name.strip())
    unknown = [name for name in names if name not in PROPAGATORS]
    if unknown:
        raise ValueError(f"{PROPAGATORS_ENV} names unknown propagators: {', '.join(unknown)}.")
    return tuple(name for name in names if name in ("tracecontext", "xray"))


def split_exporters(environ: Mapping[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``OTEL_TRACES_EXPORTER`` as (the known exporters to build, the unknown names); ``none`` alone builds none."""
    raw = environ.get(EXPORTER_ENV, "").strip()
    names = tuple(dict.fromkeys(name.strip().lower() for name in raw.split(",") if name.strip()))
    if not names:
        return DEFAULT_EXPORTERS, ()
    unknown = tuple(name for name in names if name not in EXPORTERS)
    return tuple(name for name in names if name in EXPORTERS and name != "none"), unknown


def unsupported_protocol(environ: Mapping[str, str]) -> str | None:
    """The OTLP protocol variable's value when it names one other than ``http/protobuf``, else ``None``."""
    for name in PROTOCOL_ENVS:
        value = environ.get(name, "").strip().lower()
        if value:
            return None if value == PROTOCOL else f"{name}={value}"
    return None


def endpoint_of(settings: OtelSettings, environ: Mapping[str, str], region: str | None) -> str | None:
    """The traces URL to pass to the exporter; ``None`` leaves the standard variables to the exporter."""
    if settings.endpoint:
        return settings.endpoint
    if environ.get(TRACES_ENDPOINT_ENV) or environ.get(ENDPOINT_ENV):
        return None
    if settings.sigv4 and region:
        return XRAY_OTLP_ENDPOINT.format(region=region)
    return None


def resolve(config: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> OtelSettings:
    """The settings from ``PRODKIT`` and the environment; ``ValueError`` for a malformed variable."""
    otel = config["OTEL"]
    sampler, ratio = parse_sampler(environ)
    return OtelSettings(
        service_name=otel["SERVICE_NAME"],
        default_service_name=config["SERVICE_NAME"],
        endpoint=otel["ENDPOINT"],
        sampler=sampler,
        ratio=ratio,
        propagators=parse_propagators(environ),
        trust_incoming=otel["TRUST_INCOMING_SAMPLING"],
        sigv4=otel["AWS_SIGV4"],
        region=otel["AWS_REGION"],
        exporters=split_exporters(environ)[0],
        global_provider=otel["GLOBAL_PROVIDER"],
        shutdown_timeout=otel["SHUTDOWN_TIMEOUT"],
    )
