"""Counting task runs: the shared metric store, and the observers (the CloudWatch publisher)."""

from __future__ import annotations

import logging

from django_prodkit.metrics import observers
from django_prodkit.metrics.store import get_store

logger = logging.getLogger("django_prodkit.tasks")

_failed: set[int] = set()


def record_task(task_name: str, outcome: str, seconds: float) -> None:
    """Count one finished run of ``task_name`` (a bounded label) with its outcome and duration."""
    get_store().observe_task(task_name, outcome, seconds)
    for observer in tuple(observers._task_observers):
        try:
            observer(task_name, outcome, seconds * 1000.0)
        except Exception:
            # Once per observer with the traceback; a broken observer must not flood the worker's logs.
            if id(observer) in _failed:
                logger.debug("task observer %r failed", observer, exc_info=True)
            else:
                _failed.add(id(observer))
                logger.exception("task observer %r failed; later failures are logged at DEBUG", observer)
