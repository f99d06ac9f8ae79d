"""Celery: the ids and trace context travel in each message's headers; each run is logged, traced and counted.

Imported only when Celery is installed and ``PRODKIT["CELERY_INTEGRATION"]`` is on (see :mod:`.setup`).
Hooks: ``before_task_publish``/``after_task_publish`` (in the process that sends: the web server, another task, a
command), which make the PRODUCER span and put the ids and its trace context in the message;
``task_prerun``/``task_postrun``/``task_failure`` (in the worker process that runs the task); and ``worker_init``,
which adds a consumer bootstep so that the worker's "Task ... received" line carries the message's ids too (Celery
writes it before any signal, from the task's strategy, which the step wraps). For the metrics: ``worker_init`` also
says how many pool processes count (the per-worker warning), ``worker_process_init`` folds the files of exited pool
children as a new one starts, and ``worker_process_shutdown`` folds a child's own files as it exits
(``--max-tasks-per-child``), so the shared directory stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import bootsteps, signals

from django_prodkit import metrics
from django_prodkit.tasks.runs import (
    FAILED,
    HEADER,
    IGNORED,
    RETRIED,
    SUCCEEDED,
    RunContext,
    TaskRun,
    outgoing_header,
    start_producer_span,
)
from django_prodkit.tracing.base import NOOP_SPAN, Span

SYSTEM = "celery"

#: Celery's final state of a run, as passed to ``task_postrun``, to our outcome.
_OUTCOMES = {"SUCCESS": SUCCEEDED, "FAILURE": FAILED, "RETRY": RETRIED}

# Runs in progress in this process by task id; a list because an eager retry runs again under the same id.
_runs: dict[str, list[TaskRun]] = {}


# PRODUCER spans of messages being published in this process, by task id, ended by ``after_task_publish``. A publish
# that raises never gets there, so the oldest are dropped past a bound.
_publishing: dict[str, Span] = {}
_MAX_PUBLISHING = 1000


def _task_id(headers: Any, body: Any) -> str | None:
    # Protocol 2 has the id in the headers, protocol 1 in the body.
    for source in (headers, body):
        if isinstance(source, dict) and isinstance(source.get("id"), str):
            return str(source["id"])
    return None


def _before_publish(
    sender: Any = None, body: Any = None, routing_key: Any = None, headers: dict[str, Any] | None = None, **kwargs: Any
) -> None:
    if headers is None:
        return
    task_id = _task_id(headers, body)
    if task_id is not None:
        span = start_producer_span(
            SYSTEM, task_id, str(sender or ""), routing_key if isinstance(routing_key, str) else None
        )
        if span is not NOOP_SPAN:
            if len(_publishing) >= _MAX_PUBLISHING:
                del _publishing[next(iter(_publishing))]
            _publishing[task_id] = span
    # Protocol 2 puts custom headers beside Celery's own; they reach the worker as ``task.request.<name>``.
    # Written while the producer span is current, so the run's span is its child.
    headers[HEADER] = outgoing_header()


def _after_publish(headers: Any = None, body: Any = None, **kwargs: Any) -> None:
    span = _publishing.pop(_task_id(headers, body) or "", None)
    if span is not None:
        span.end()


def _with_ids(handler: Callable[..., Any]) -> Callable[..., Any]:
    def handle_with_ids(message: Any, *args: Any, **kwargs: Any) -> Any:
        headers = getattr(message, "headers", None)
        header = headers.get(HEADER) if isinstance(headers, dict) else None
        # A message sent without our header gets its id when it runs: a made-up one here would not match it.
        if not (isinstance(headers, dict) and isinstance(header, dict) and header.get("request_id")):
            return handler(message, *args, **kwargs)
        context = RunContext(str(headers.get("id") or ""), str(headers.get("task") or ""), header)
        try:
            return handler(message, *args, **kwargs)
        finally:
            context.reset()

    handle_with_ids.__wrapped__ = handler  # type: ignore[attr-defined]
    return handle_with_ids


class ReceivedLineIds(bootsteps.StartStopStep):  # type: ignore[misc]
    """A consumer bootstep: each task's strategy runs with the message's ids current, so "received" carries them.

    Runs after Celery's ``Tasks`` step, which (re)builds the strategies each time the consumer (re)connects.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, consumer: Any) -> None:
        strategies = consumer.strategies
        for name, handler in list(strategies.items()):
            if not hasattr(handler, "__wrapped__"):
                strategies[name] = _with_ids(handler)


def _worker_init(sender: Any = None, **kwargs: Any) -> None:
    steps = getattr(getattr(sender, "app", None), "steps", None)
    if steps is not None:
        steps["consumer"].add(ReceivedLineIds)


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


def _pool_size(sender: Any = None, **kwargs: Any) -> None:
    concurrency = getattr(sender, "concurrency", None)
    if "prefork" in str(getattr(sender, "pool_cls", "")) and isinstance(concurrency, int):
        metrics.register_celery_pool(concurrency)


def _process_init(**kwargs: Any) -> None:
    metrics.process_started()


def _process_shutdown(**kwargs: Any) -> None:
    metrics.process_exiting()


_HANDLERS = (
    (signals.worker_init, _pool_size),
    (signals.worker_process_init, _process_init),
    (signals.worker_process_shutdown, _process_shutdown),
    (signals.before_task_publish, _before_publish),
    (signals.after_task_publish, _after_publish),
    (signals.worker_init, _worker_init),
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
