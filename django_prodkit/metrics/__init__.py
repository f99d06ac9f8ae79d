"""Request and task metrics; the functions below are what a task system's worker tells the metrics.

Imports stay inside the functions: the gunicorn hooks import this package before ``PROMETHEUS_MULTIPROC_DIR`` may
be set, and nothing here may import prometheus_client that early (see ``multiproc``).
"""

from __future__ import annotations


def register_celery_pool(processes: int) -> None:
    """This process runs a Celery prefork pool of ``processes``: without a shared directory, each counts its own."""
    from django_prodkit.metrics.workers import CELERY_PREFORK, register_server

    register_server(CELERY_PREFORK, processes)


def process_started() -> None:
    """A worker process is starting: fold the files of the processes that exited before it (multiprocess only)."""
    from django_prodkit.metrics.multiproc import multiproc_dir
    from django_prodkit.metrics.store import get_store

    if multiproc_dir() is not None:
        get_store()  # creating the store folds the dead processes' files


def process_exiting() -> None:
    """A worker process counts nothing more: fold its own files into the totals now (multiprocess only)."""
    from django_prodkit.metrics.multiproc import multiproc_dir
    from django_prodkit.metrics.store import get_store

    if multiproc_dir() is not None:
        files = get_store().files
        if files is not None:
            files.retire()
