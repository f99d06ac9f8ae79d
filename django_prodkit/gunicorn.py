"""Gunicorn server hooks for exact request metrics across workers, and spans flushed when a worker exits.

Use the module as the configuration (``gunicorn -c python:django_prodkit.gunicorn``) or import the hooks
from your ``gunicorn.conf.py``::

    from django_prodkit.gunicorn import child_exit, on_exit, on_starting, worker_exit  # noqa: F401

Loaded by gunicorn, it sets ``PROMETHEUS_MULTIPROC_DIR`` when it is not set yet (a fresh directory per
server under the system temporary directory), before any worker imports prometheus_client. Counters and
histograms of dead workers stay in the directory and keep counting in the merged totals, so recycled workers
lose nothing.
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


def _default_directory() -> str:
    # The master's pid keeps two servers on one host apart.
    return os.path.join(tempfile.gettempdir(), f"{_DEFAULT_PREFIX}{os.getpid()}")


#: Whether this module chose the directory (and so may delete it when the server exits). Only when loaded by
#: gunicorn: importing it elsewhere (a test, a script) must not switch that process to multiprocess mode.
CHOSEN_HERE = _GUNICORN_LOADED in sys.modules and (
    not os.environ.get(MULTIPROC_ENV) or os.environ.get(_OWNER_ENV, str(os.getpid())) != str(os.getpid())
)
if CHOSEN_HERE:
    os.environ[MULTIPROC_ENV] = _default_directory()
    os.environ[_OWNER_ENV] = str(os.getpid())


def on_starting(server: Any) -> None:
    """Gunicorn ``on_starting``: create the directory and remove the files of a previous run."""
    directory = multiproc_dir()
    if directory is not None:
        prepare_directory(directory)


def child_exit(server: Any, worker: Any) -> None:
    """Gunicorn ``child_exit``: drop the dead worker's live gauges; its counters stay in the totals."""
    directory = multiproc_dir()
    if directory is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, directory)  # type: ignore[no-untyped-call]


def worker_exit(server: Any, worker: Any) -> None:
    """Gunicorn ``worker_exit`` (in the worker): flush the CloudWatch publisher and the spans before it ends."""
    from django_prodkit.cloudwatch import shutdown
    from django_prodkit.tracing.backend import shutdown_tracing

    shutdown()
    shutdown_tracing()


def on_exit(server: Any) -> None:
    """Gunicorn ``on_exit``: delete the directory if this module chose it; a directory you set is kept."""
    if CHOSEN_HERE:
        shutil.rmtree(os.environ[MULTIPROC_ENV], ignore_errors=True)
