"""Gunicorn server hooks for exact request metrics across workers, spans flushed when a worker exits, JSON lines.

Use the module as the configuration (``gunicorn -c python:django_prodkit.gunicorn``: it then replaces
``./gunicorn.conf.py``, which gunicorn no longer reads) or import it from your ``gunicorn.conf.py``::

    from django_prodkit.gunicorn import child_exit, logconfig_dict, on_exit, on_starting, worker_exit  # noqa: F401

``logconfig_dict`` makes gunicorn's own lines (``Booting worker``, ``WORKER TIMEOUT``: the ``gunicorn.error``
logger) JSON lines on stdout of the same shape as the application's. ``--log-level`` still sets their level.
gunicorn's access lines (``gunicorn.access``) are written only at WARNING and above, that is never, since
``AccessLogMiddleware`` writes the access line with the request id and route; set the logger's level to INFO in
a copy of the dict to have both.

Loaded by gunicorn, it sets ``PROMETHEUS_MULTIPROC_DIR`` when it is not set yet (a fresh directory per
server, created by ``tempfile.mkdtemp``: an unpredictable name, mode 0700), before any worker imports
prometheus_client. When a worker exits, the master folds the files of every dead process into one compacted
file and deletes them, so recycled workers lose nothing and the directory stays bounded. The hooks are the fast
path, not the only one: a process starting and a read fold dead processes' files too (docs/metrics.md).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

from django_prodkit.metrics.multiproc import MULTIPROC_ENV, multiproc_dir, prepare_directory

_DEFAULT_PREFIX = "django-prodkit-metrics-"
# Imported by gunicorn before it reads its configuration.
_GUNICORN_LOADED = "gunicorn.app.base"
# The pid of the master that chose the directory: a new master after a ``USR2`` upgrade inherits the
# environment, and must not share a directory the old master deletes when it exits.
_OWNER_ENV = "PRODKIT_METRICS_DIR_OWNER"


#: Gunicorn's ``logconfig_dict`` setting: its loggers write JSON lines to stdout through our formatter. The master
#: reads it before Django is set up: nothing in it needs the settings.
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "django_prodkit.logging.RequestIDFilter"}},
    "formatters": {"json": {"()": "django_prodkit.logging.JSONFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "filters": ["request_id"],
            "formatter": "json",
        }
    },
    # gunicorn's own loggers only: a root handler here (gunicorn's default puts one) would stay under an
    # application's LOGGING that has no root of its own, and print every propagated line twice.
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        # No level: the one ``--log-level`` gave gunicorn.error stays.
        "gunicorn.error": {"handlers": ["stdout"], "propagate": False},
        "gunicorn.access": {"level": "WARNING", "handlers": ["stdout"], "propagate": False},
    },
}


def _default_directory() -> str:
    # An unpredictable name and mode 0700: another local user can neither guess it nor plant files in it.
    return tempfile.mkdtemp(prefix=_DEFAULT_PREFIX)


#: Whether this module chose the directory (and so may delete it when the server exits). Only when loaded by
#: gunicorn: importing it elsewhere (a test, a script) must not switch that process to multiprocess mode.
CHOSEN_HERE = _GUNICORN_LOADED in sys.modules and (
    not os.environ.get(MULTIPROC_ENV) or os.environ.get(_OWNER_ENV, str(os.getpid())) != str(os.getpid())
)
if CHOSEN_HERE:
    os.environ[MULTIPROC_ENV] = _default_directory()
    os.environ[_OWNER_ENV] = str(os.getpid())


def on_starting(server: Any) -> None:
    """Gunicorn ``on_starting``: create the directory and fold the files of processes that are gone.

    The files of live processes (a Celery worker sharing the directory) are left alone.
    """
    directory = multiproc_dir()
    if directory is not None:
        prepare_directory(directory)


def child_exit(server: Any, worker: Any) -> None:
    """Gunicorn ``child_exit``: fold the dead worker's files into the totals (any other dead process's too).

    prometheus_client's ``mark_process_dead`` runs as well, for other libraries' live gauges in the directory.
    """
    directory = multiproc_dir()
    if directory is not None:
        from prometheus_client import multiprocess

        from django_prodkit.metrics.compaction import compact_quietly

        multiprocess.mark_process_dead(worker.pid, directory)  # type: ignore[no-untyped-call]
        compact_quietly(directory)


def worker_exit(server: Any, worker: Any) -> None:
    """Gunicorn ``worker_exit`` (in the worker): flush the CloudWatch publisher, the spans and the OTLP metrics.

    A worker that held the OTLP export lock exports a last time and lets another worker take over at once.
    """
    from django_prodkit.cloudwatch import shutdown
    from django_prodkit.metrics.otlp import shutdown as shutdown_otlp_metrics
    from django_prodkit.tracing.backend import shutdown_tracing

    shutdown()
    shutdown_otlp_metrics()
    shutdown_tracing()


def on_exit(server: Any) -> None:
    """Gunicorn ``on_exit``: delete the directory if this module chose it; a directory you set is kept."""
    if CHOSEN_HERE:
        shutil.rmtree(os.environ[MULTIPROC_ENV], ignore_errors=True)
