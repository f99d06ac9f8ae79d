"""Publish the request metrics to AWS CloudWatch (EMF documents or ``PutMetricData``), off the request path.

One :class:`~django_prodkit.cloudwatch.publisher.Publisher` per process, made lazily on the first request the
metrics count, so it starts in each gunicorn worker after the fork and never in the master. A fork resets it; the
process's exit (``atexit``, and gunicorn's ``worker_exit`` hook in :mod:`django_prodkit.gunicorn`) flushes it.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

from django_prodkit.cloudwatch.config import CloudWatchSettings
from django_prodkit.cloudwatch.publisher import Publisher
from django_prodkit.metrics.observers import add_observer, add_task_observer, remove_observer, remove_task_observer

#: ``manage.py`` commands that serve requests or run tasks (Django Tasks' workers); every other command leaves the
#: publisher off.
SERVER_COMMANDS = frozenset({"runserver", "runserver_plus", "testserver", "db_worker", "rqworker"})
_MANAGE_SCRIPTS = frozenset({"manage.py", "django-admin", "django-admin.py"})

_lock = threading.Lock()
_publisher: Publisher | None = None
_pid: int | None = None
_hooks_registered = False


def is_non_server_command(argv: list[str] | None = None) -> bool:
    """Whether this process runs a management command that serves no requests (``migrate``, ``shell`` ...)."""
    argv = sys.argv if argv is None else argv
    if not argv:
        return False
    script = os.path.basename(argv[0])
    # ``python -m django`` runs django/__main__.py; any other package's __main__ (``python -m gunicorn``) serves.
    is_django_main = script == "__main__.py" and os.path.basename(os.path.dirname(argv[0])) == "django"
    is_manage = script in _MANAGE_SCRIPTS or is_django_main
    return is_manage and (len(argv) < 2 or argv[1] not in SERVER_COMMANDS)


def get_publisher() -> Publisher | None:
    """This process's publisher, or ``None`` before the first observed request."""
    return _publisher if _pid == os.getpid() else None


def _publisher_for_this_process() -> Publisher:
    global _publisher, _pid
    with _lock:
        if _publisher is None or _pid != os.getpid():
            # A fork copies the parent's publisher without its thread: start afresh and count only our own requests.
            _publisher = Publisher(CloudWatchSettings.from_config())
            _pid = os.getpid()
            _publisher.start()
        return _publisher


def observe(method: str, route: str, status: int, duration_ms: float) -> None:
    """The metrics observer: count one request in this process's publisher (started on first use)."""
    publisher = _publisher
    if publisher is None or _pid != os.getpid():
        publisher = _publisher_for_this_process()
    publisher.observe(method, route, status, duration_ms)


def observe_task(task: str, outcome: str, duration_ms: float) -> None:
    """The task observer: count one task run in this process's publisher (a Celery worker's, for one)."""
    publisher = _publisher
    if publisher is None or _pid != os.getpid():
        publisher = _publisher_for_this_process()
    publisher.observe_task(task, outcome, duration_ms)


def shutdown() -> None:
    """Flush and stop this process's publisher (idempotent; a no-op in a process that never published)."""
    publisher = get_publisher()
    if publisher is not None:
        publisher.close()


def _reset_after_fork() -> None:
    global _publisher, _pid, _lock
    _publisher = None
    _pid = None
    # The parent's lock may have been held by another thread at the moment of the fork.
    _lock = threading.Lock()


def install() -> bool:
    """Register the observer when CloudWatch is enabled and this process may serve requests (from ``ready()``)."""
    settings = CloudWatchSettings.from_config()
    if not settings.enabled or is_non_server_command():
        remove_observer(observe)
        remove_task_observer(observe_task)
        return False
    add_observer(observe)
    add_task_observer(observe_task)
    _register_process_hooks()
    return True


def _register_process_hooks() -> None:
    # Only once CloudWatch is on: importing this package (the checks do) must leave the process untouched.
    global _hooks_registered
    if _hooks_registered:
        return
    _hooks_registered = True
    atexit.register(shutdown)
    os.register_at_fork(after_in_child=_reset_after_fork)
