"""Choosing and building the tracer once per configuration; aws-xray-sdk is imported only from here, lazily."""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from django_prodkit.conf import get_config
from django_prodkit.tracing.base import Tracer
from django_prodkit.tracing.emitter import DAEMON_ADDRESS_ENV, daemon_address_from_env

logger = logging.getLogger("django_prodkit.tracing")

#: The distribution that provides the X-Ray backend, and the extra that installs it.
XRAY_MODULE = "aws_xray_sdk"
XRAY_EXTRA = "pip install django-prodkit[xray]"

#: aws-xray-sdk's own environment variables; a change to one of them needs a freshly configured recorder.
SDK_ENVIRONMENT = (DAEMON_ADDRESS_ENV, "AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_TRACING_NAME")

_lock = threading.Lock()
_current: tuple[str, Tracer | None] | None = None


def xray_installed() -> bool:
    """Whether aws-xray-sdk can be imported (checked without importing it)."""
    return importlib.util.find_spec(XRAY_MODULE) is not None


def _key(xray: dict[str, Any], service_name: str) -> str:
    return repr((sorted(xray.items()), service_name, [os.environ.get(name) for name in SDK_ENVIRONMENT]))


def get_tracer() -> Tracer | None:
    """The tracer for the current configuration, built on first use; ``None`` when tracing is off or cannot run.

    Building it configures aws-xray-sdk's process-wide recorder, so it happens once per configuration
    (``override_settings`` in tests makes a new one). Problems are the system checks' job
    (``prodkit.E030``-``E035``); here they turn tracing off with one warning and never raise.
    """
    global _current
    config = get_config()
    xray = config["XRAY"]
    if not xray["ENABLED"]:
        return None
    key = _key(xray, config["SERVICE_NAME"])
    with _lock:
        if _current is not None and _current[0] == key:
            return _current[1]
        if _current is not None and _current[1] is not None:
            _current[1].shutdown()
        _current = (key, _build(xray, config["SERVICE_NAME"]))
        return _current[1]


def _build(xray: dict[str, Any], service_name: str) -> Tracer | None:
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

    Does nothing, and imports nothing, when tracing is off.
    """
    try:
        get_tracer()
    except ImproperlyConfigured:
        # Reported by the system checks (prodkit.E002/E003); startup goes on.
        return


def reset_tracer() -> None:
    """Shut the current tracer down and forget it (tests, reconfiguration)."""
    global _current
    with _lock:
        if _current is not None and _current[1] is not None:
            _current[1].shutdown()
        _current = None
