"""Choosing and building the tracer once per configuration; the tracing SDKs are imported only from here, lazily.

With both backends switched on, OpenTelemetry wins (``prodkit.E061`` says so).
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from django_prodkit.conf import get_config
from django_prodkit.tracing.base import Tracer
from django_prodkit.tracing.emitter import DAEMON_ADDRESS_ENV, daemon_address_from_env

logger = logging.getLogger("django_prodkit.tracing")

#: The distribution that provides the X-Ray backend, and the extra that installs it.
XRAY_MODULE = "aws_xray_sdk"
XRAY_EXTRA = "pip install django-prodkit[xray]"
OTEL_EXTRA = "pip install django-prodkit[otel]"

#: aws-xray-sdk's own environment variables; a change to one of them needs a freshly configured recorder.
SDK_ENVIRONMENT = (DAEMON_ADDRESS_ENV, "AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_TRACING_NAME")

#: The OpenTelemetry variables that shape the tracer; a change to one of them builds a new one.
OTEL_ENVIRONMENT = (
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_PROPAGATORS",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_TRACES_EXPORTER",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)

_lock = threading.Lock()
_exit_hook = False
#: The configuration dict and environment the tracer was built for, the key they make, and the tracer.
_current: tuple[Mapping[str, Any], tuple[str | None, ...], str, Tracer | None] | None = None


def xray_installed() -> bool:
    """Whether aws-xray-sdk can be imported (checked without importing it)."""
    return importlib.util.find_spec(XRAY_MODULE) is not None


def otel_installed() -> bool:
    """Whether the OpenTelemetry SDK and its OTLP/HTTP exporter can be imported (checked without importing)."""
    from django_prodkit.tracing.otel.config import EXPORTER_MODULE, OTEL_MODULE

    try:
        return all(importlib.util.find_spec(name) is not None for name in (OTEL_MODULE, EXPORTER_MODULE))
    except ImportError:
        return False


def _key(backend: dict[str, Any], service_name: str, environment: tuple[str | None, ...]) -> str:
    return repr((sorted(backend.items()), service_name, environment))


def get_tracer() -> Tracer | None:
    """The tracer for the current configuration, built on first use; ``None`` when tracing is off or cannot run.

    Building it configures aws-xray-sdk's process-wide recorder, so it happens once per configuration
    (``override_settings`` in tests makes a new one). Problems are the system checks' job
    (``prodkit.E030``-``E035``); here they turn tracing off with one warning and never raise.
    """
    global _current
    config = get_config()
    otel = config["OTEL"]["ENABLED"]
    if not otel and not config["XRAY"]["ENABLED"]:
        return None
    environment = tuple([os.environ.get(name) for name in (OTEL_ENVIRONMENT if otel else SDK_ENVIRONMENT)])
    current = _current
    # Called for every outbound call and task: the cached configuration is the same object until it changes.
    if current is not None and current[0] is config and current[1] == environment:
        return current[3]
    name = "OTEL" if otel else "XRAY"
    key = name + _key(config[name], config["SERVICE_NAME"], environment)
    with _lock:
        if _current is not None and _current[2] == key:
            _current = (config, environment, key, _current[3])
            return _current[3]
        if _current is not None and _current[3] is not None:
            _current[3].shutdown()
        tracer = _build_otel(config) if otel else _build(config)
        _current = (config, environment, key, tracer)
        return tracer


def _build_otel(config: Mapping[str, Any]) -> Tracer | None:
    if not otel_installed():
        logger.warning(
            "OpenTelemetry tracing is on but the otel extra is not installed (%s); tracing is off.", OTEL_EXTRA
        )
        return None
    try:
        from django_prodkit.tracing.otel.config import resolve
        from django_prodkit.tracing.otel.tracer import build_tracer

        tracer = build_tracer(resolve(config))
    except Exception as exc:
        logger.warning("OpenTelemetry tracing could not be set up and is off (%s); run manage.py check.", exc)
        return None
    global _exit_hook
    if not _exit_hook:
        # Processes without gunicorn's worker_exit (manage.py, uvicorn, runserver) send what is queued at
        # exit too, within OTEL.SHUTDOWN_TIMEOUT.
        _exit_hook = True
        atexit.register(shutdown_tracing)
    return tracer


def _build(config: Mapping[str, Any]) -> Tracer | None:
    xray, service_name = config["XRAY"], config["SERVICE_NAME"]
    if not xray_installed():
        logger.warning("X-Ray tracing is on but aws-xray-sdk is not installed (%s); tracing is off.", XRAY_EXTRA)
        return None
    try:
        daemon_address_from_env()
    except ValueError as exc:
        # aws-xray-sdk raises on import with such an address; prodkit.E034 reports it.
        logger.warning("X-Ray tracing is off: %s", exc)
        return None
    try:
        from django_prodkit.tracing.xray import XRayTracer

        return XRayTracer(xray, service_name)
    except Exception:
        logger.warning("X-Ray tracing could not be set up and is off; run manage.py check.", exc_info=True)
        return None


def setup_tracing() -> None:
    """Configure tracing at startup (from ``AppConfig.ready``) so management commands and threads are covered.

    Does nothing, and imports nothing, when tracing is off. The OpenTelemetry backend starts no thread
    here: its batch processor starts in the process that ends the first span (after gunicorn's fork).
    """
    try:
        get_tracer()
    except ImproperlyConfigured:
        # Reported by the system checks (prodkit.E002/E003); startup goes on.
        return


def shutdown_tracing() -> None:
    """Export what this process has queued and stop the tracer (gunicorn's ``worker_exit``); never raises."""
    reset_tracer()


def reset_tracer() -> None:
    """Shut the current tracer down and forget it (tests, reconfiguration)."""
    global _current
    with _lock:
        if _current is not None and _current[3] is not None:
            _current[3].shutdown()
        _current = None
