"""The metrics over OTLP/HTTP: the exact multi-process aggregate, once per interval, from one process per server.

Installed from ``AppConfig.ready`` when ``PRODKIT["OTLP_METRICS"]["ENABLED"]`` (or ``OTEL_METRICS_EXPORTER=otlp``)
turns it on. Each process starts its export thread at its first counted request, so a gunicorn master never
runs one (no thread crosses a fork) and a ``migrate`` never exports; of all the threads, only the one holding
the export lock sends (see :mod:`.leader`). Importing this package imports nothing of OpenTelemetry.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured

from django_prodkit.conf import get_config
from django_prodkit.metrics.observers import add_observer, remove_observer
from django_prodkit.metrics.otlp.config import resolve

if TYPE_CHECKING:
    from django_prodkit.metrics.otlp.exporter import MetricsExporter

logger = logging.getLogger("django_prodkit.metrics")

_lock = threading.Lock()
_exporter: MetricsExporter | None = None
_pid: int | None = None
_hooks_registered = False


def get_exporter() -> MetricsExporter | None:
    """This process's exporter, or ``None`` before its first counted request (or when it could not start)."""
    return _exporter if _pid == os.getpid() else None


def _start() -> None:
    global _exporter, _pid
    with _lock:
        if _pid == os.getpid():
            return
        # Set first: a start that fails is not tried again at every request.
        _pid = os.getpid()
        _exporter = None
        try:
            _exporter = _build()
        except Exception as exc:
            logger.warning("The metrics are not exported over OTLP: %s", exc)
            return
        if _exporter is not None:
            _exporter.start()


def _build() -> MetricsExporter | None:
    from django_prodkit.metrics.otlp.exporter import build_exporter
    from django_prodkit.metrics.store import get_store
    from django_prodkit.metrics.workers import per_worker_warning

    store = get_store()
    if not store.multiprocess and per_worker_warning() is not None:
        # Each worker would send its own counts as the server's: wrong totals, so nothing is sent.
        logger.warning(
            "The metrics are not exported over OTLP: this worker counts only its own requests "
            "(PROMETHEUS_MULTIPROC_DIR is not set; see the Metrics docs)."
        )
        return None
    return build_exporter(resolve(get_config()), store)


def observe(method: str, route: str, status: int, duration_ms: float) -> None:
    """The metrics observer: start this process's export thread at its first counted request."""
    if _pid != os.getpid():
        _start()


def shutdown() -> None:
    """Stop this process's export thread, exporting a last time if it holds the lock (gunicorn's ``worker_exit``)."""
    global _exporter
    exporter = get_exporter()
    if exporter is not None:
        _exporter = None
        exporter.close()


def _reset_after_fork() -> None:
    global _exporter, _pid, _lock
    _exporter = None
    _pid = None
    # The parent's lock may have been held by another thread at the moment of the fork.
    _lock = threading.Lock()


def install() -> bool:
    """Add the observer when the export is on (from ``ready()``); a bad configuration is left to the checks."""
    try:
        enabled = resolve(get_config()).enabled
    except (ValueError, ImproperlyConfigured):
        enabled = False  # prodkit.E142 / E003 say why
    if not enabled:
        remove_observer(observe)
        return False
    add_observer(observe)
    global _hooks_registered
    if not _hooks_registered:
        _hooks_registered = True
        atexit.register(shutdown)
        os.register_at_fork(after_in_child=_reset_after_fork)
    return True
