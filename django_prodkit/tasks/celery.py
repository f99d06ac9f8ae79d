"""Celery: the ids and trace context travel in each message's headers; each run is logged, traced and counted.

Imported only when Celery is installed and ``PRODKIT["CELERY_INTEGRATION"]`` is on (see :mod:`.setup`).
Hooks: ``before_task_publish`` (in the process that sends: the web server, another task, a command),
``task_prerun``/``task_postrun``/``task_failure`` (in the worker process that runs the task). For the metrics:
``worker_init`` says how many pool processes count (the per-worker warning), ``worker_process_init`` folds the
files of exited pool children as a new one starts, and ``worker_process_shutdown`` folds a child's own files as it
exits (``--max-tasks-per-child``), so the shared directory stays bounded.
"""

from __future__ import annotations

from typing import Any

from celery import signals

from django_prodkit import metrics
from django_prodkit.tasks.runs import FAILED, HEADER, IGNORED, RETRIED, SUCCEEDED, TaskRun, outgoing_header

SYSTEM = "celery"

#: Celery's final state of a run, as passed to ``task_postrun``, to our outcome.
_OUTCOMES = {"SUCCESS": SUCCEEDED, "FAILURE": FAILED, "RETRY": RETRIED}

# Runs in progress in this process by task id; a list because an eager retry runs again under the same id.
_runs: dict[str, list[TaskRun]] = {}


def _before_publish(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    # Protocol 2 puts custom headers beside Celery's own; they reach the worker as ``task.request.<name>``.
    if headers is not None:
        headers[HEADER] = outgoing_header()


def _prerun(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    if task_id is None or task is None:
        return
    request = getattr(task, "request", None)
    header = getattr(request, HEADER, None)
    _runs.setdefault(task_id, []).append(TaskRun(SYSTEM, task_id, getattr(task, "name", None) or "", header))


def _failure(task_id: str | None = None, exception: BaseException | None = None, **kwargs: Any) -> None:
    runs = _runs.get(task_id or "")
    if runs and exception is not None:
        runs[-1].record_exception(exception)


def _postrun(task_id: str | None = None, state: str | None = None, **kwargs: Any) -> None:
    runs = _runs.get(task_id or "")
    if not runs:
        return
    run = runs.pop()
    if not runs:
        del _runs[task_id or ""]
    run.finish(_OUTCOMES.get(state or "", IGNORED))


def _worker_init(sender: Any = None, **kwargs: Any) -> None:
    concurrency = getattr(sender, "concurrency", None)
    if "prefork" in str(getattr(sender, "pool_cls", "")) and isinstance(concurrency, int):
        metrics.register_celery_pool(concurrency)


def _process_init(**kwargs: Any) -> None:
    metrics.process_started()


def _process_shutdown(**kwargs: Any) -> None:
    metrics.process_exiting()


_HANDLERS = (
    (signals.worker_init, _worker_init),
    (signals.worker_process_init, _process_init),
    (signals.worker_process_shutdown, _process_shutdown),
    (signals.before_task_publish, _before_publish),
    (signals.task_prerun, _prerun),
    (signals.task_failure, _failure),
    (signals.task_postrun, _postrun),
)


def connect() -> None:
    """Connect the handlers to Celery's signals (idempotent)."""
    for signal, handler in _HANDLERS:
        signal.connect(handler, weak=False, dispatch_uid=f"django_prodkit.{handler.__name__}")


def disconnect() -> None:
    """Disconnect the handlers (for tests, and for turning the integration off)."""
    for signal, handler in _HANDLERS:
        signal.disconnect(handler, dispatch_uid=f"django_prodkit.{handler.__name__}")
