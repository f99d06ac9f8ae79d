"""Django Tasks (``django.tasks`` on Django 6.x, the ``django-tasks`` backport on 5.2): runs logged, traced, counted.

The framework offers three signals, ``task_enqueued``, ``task_started`` and ``task_finished``, and a
``TaskResult`` with no room for headers. So a run started in the process that enqueued it (the immediate
backend) keeps the request's id and trace, while a run in a worker process gets an id of its own; the
``task_enqueued`` line, written with the request's id and the ``task_id``, joins the two in the logs.
There is no retry signal, so nothing is counted as retried.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from types import ModuleType
from typing import Any

import django

from django_prodkit.tasks.runs import FAILED, IGNORED, SUCCEEDED, TaskRun, task_label

logger = logging.getLogger("django_prodkit.tasks")

SYSTEM = "django_tasks"

# Runs in progress in this process by task result id.
_runs: dict[str, TaskRun] = {}


def signals_module() -> ModuleType | None:
    """``django.tasks.signals`` on Django 6.x, else the backport's when it is installed, else ``None``."""
    if django.VERSION >= (6, 0):
        return importlib.import_module("django.tasks.signals")
    if importlib.util.find_spec("django_tasks") is not None:
        return importlib.import_module("django_tasks.signals")
    return None


def _name(task_result: Any) -> str:
    return task_label(getattr(getattr(task_result, "task", None), "module_path", None))


def _enqueued(task_result: Any = None, **kwargs: Any) -> None:
    logger.info("task enqueued", extra={"task_id": str(task_result.id), "task_name": _name(task_result)})


def _started(task_result: Any = None, **kwargs: Any) -> None:
    _runs[str(task_result.id)] = TaskRun(SYSTEM, str(task_result.id), _name(task_result))


def _finished(task_result: Any = None, **kwargs: Any) -> None:
    run = _runs.pop(str(task_result.id), None)
    if run is None:
        return
    status = str(getattr(task_result, "status", ""))
    outcome = {"SUCCESSFUL": SUCCEEDED, "FAILED": FAILED}.get(status, IGNORED)
    run.finish(outcome)


_HANDLERS = (("task_enqueued", _enqueued), ("task_started", _started), ("task_finished", _finished))


def connect() -> bool:
    """Connect the handlers when a Tasks framework is available; whether one was."""
    module = signals_module()
    if module is None:
        return False
    for name, handler in _HANDLERS:
        getattr(module, name).connect(handler, weak=False, dispatch_uid=f"django_prodkit.{handler.__name__}")
    return True


def disconnect() -> None:
    """Disconnect the handlers (for tests)."""
    module = signals_module()
    if module is not None:
        for name, handler in _HANDLERS:
            getattr(module, name).disconnect(handler, dispatch_uid=f"django_prodkit.{handler.__name__}")
