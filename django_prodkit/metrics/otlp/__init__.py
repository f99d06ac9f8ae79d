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

#: Seconds :func:`shutdown` waits for a thread that is still importing and building the exporter.
BUILD_JOIN_TIMEOUT = 10.0

_lock = threading.Lock()
_exporter: MetricsExporter | None = None
_thread: threading.Thread | None = None
_stopping = threading.Event()
_pid: int | None = None
_hooks_registered = False


def get_exporter() -> MetricsExporter | None:
    """This process's exporter, or ``None`` before its first counted request (or when it could not start)."""
    return _exporter if _pid == os.getpid() else None


def _start() -> None:
    global _exporter, _pid, _thread, _stopping
    with _lock:
        if _pid == os.getpid():
            return
        # Set first: a start that fails is not tried again at every request.
        _pid = os.getpid()
        _exporter = None
        # The request only starts the thread: importing and building the exporter happen in it.
        _stopping = threading.Event()
        _thread = threading.Thread(
            target=_export_in_this_thread, args=(_stopping,), name="prodkit-otlp-metrics", daemon=True
        )
        _thread.start()


def _export_in_this_thread(stopping: threading.Event) -> None:
    global _exporter
    try:
        exporter = _build()
    except Exception as exc:
        logger.warning("The metrics are not exported over OTLP: %s", exc)
        return
    if exporter is None:
        return
    with _lock:
        if stopping.is_set():
            exporter.close(final=False)
            return
        _exporter = exporter
    exporter.run()


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
    """Stop this process's export thread, exporting a last time if it holds the lock (gunicorn's ``worker_exit``).

    Waits for a thread that is still building the exporter too: a daemon thread left inside an import when
    the interpreter finalizes holds that module's lock, and the exit then hangs (a worker that never ends).
    """
    global _exporter, _pid
    if _pid != os.getpid():
        return
    with _lock:
        _stopping.set()
        exporter, _exporter = _exporter, None
        _pid = None
    if exporter is not None:
        exporter.close()
    thread = _thread
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout=BUILD_JOIN_TIMEOUT)


def _reset_after_fork() -> None:
    global _exporter, _pid, _lock, _thread, _stopping
    _exporter = None
    _thread = None
    _stopping = threading.Event()
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
