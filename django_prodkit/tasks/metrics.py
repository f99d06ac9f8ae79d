"""Counting task runs: the shared metric store, and observers such as the CloudWatch publisher."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django_prodkit.metrics.store import get_store

logger = logging.getLogger("django_prodkit.tasks")

#: ``observer(task_name, outcome, duration_ms)``; must return at once and never raise.
TaskObserver = Callable[[str, str, float], None]

_observers: list[TaskObserver] = []
_failed: set[int] = set()


def add_task_observer(observer: TaskObserver) -> None:
    """Call ``observer`` for every task run counted in this process (idempotent)."""
    if observer not in _observers:
        _observers.append(observer)


def remove_task_observer(observer: TaskObserver) -> None:
    """Stop calling ``observer``; a no-op when it was not added."""
    if observer in _observers:
        _observers.remove(observer)


def record_task(task_name: str, outcome: str, seconds: float) -> None:
    """Count one finished run of ``task_name`` (a bounded label) with its outcome and duration."""
    get_store().observe_task(task_name, outcome, seconds)
    for observer in tuple(_observers):
        try:
            observer(task_name, outcome, seconds * 1000.0)
        except Exception:
            # Once per observer with the traceback; a broken observer must not flood the worker's logs.
            if id(observer) in _failed:
                logger.debug("task observer %r failed", observer, exc_info=True)
            else:
                _failed.add(id(observer))
                logger.exception("task observer %r failed; later failures are logged at DEBUG", observer)
