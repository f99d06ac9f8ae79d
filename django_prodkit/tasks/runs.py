"""What every task system shares: the headers a task is sent with, and one task run's context and metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from structlog.contextvars import bind_contextvars, reset_contextvars

from django_prodkit.context.ids import generate_request_id, get_request_id, is_valid_request_id, reset_request_id
from django_prodkit.context.ids import set_request_id as _set_request_id
from django_prodkit.context.work import get_work_fields, reset_work_fields, set_work_fields
from django_prodkit.tracing.backend import get_tracer
from django_prodkit.tracing.base import NOOP_SPAN, Span

logger = logging.getLogger("django_prodkit.tasks")

#: The message header (a small dict) that carries the ids and the trace context to the worker.
HEADER = "prodkit"
#: The outcomes a run is counted under.
SUCCEEDED = "succeeded"
FAILED = "failed"
RETRIED = "retried"
IGNORED = "ignored"
OUTCOMES = (SUCCEEDED, FAILED, RETRIED, IGNORED)

#: Longest task name used as a metric label or log field; names come from code, this only bounds a mistake.
MAX_TASK_NAME_LENGTH = 200
#: Longest value kept from each trace header a message brings (they are a few dozen characters).
_MAX_TRACE_VALUE_LENGTH = 512
_MAX_TRACE_HEADERS = 8


def outgoing_header() -> dict[str, Any]:
    """The header for a task being sent now: the current request (or command) id and trace context.

    Outside a request the task gets an id of its own, so its lines can still be found together.
    """
    header: dict[str, Any] = {"request_id": get_request_id() or generate_request_id()}
    work = get_work_fields()
    if work is not None and "command_id" in work:
        header["command_id"] = work["command_id"]
    tracer = get_tracer()
    if tracer is not None:
        carrier: dict[str, str] = {}
        tracer.inject(carrier)
        if carrier:
            header["trace"] = carrier
    return header


def start_producer_span(system: str, task_id: str, task_name: str, destination: str | None = None) -> Span:
    """The PRODUCER span of a task being sent, current (so the message carries it) until it ends; never raises."""
    tracer = get_tracer()
    if tracer is None:
        return NOOP_SPAN
    name = task_label(task_name)
    attributes = {
        "messaging.system": system,
        "messaging.operation": "publish",
        "task.id": str(task_id),
        "task.name": name,
    }
    if destination:
        attributes["messaging.destination.name"] = destination[:MAX_TASK_NAME_LENGTH]
    return tracer.start_span(f"send {name}", "producer", attributes=attributes)


def _valid_id(value: Any) -> str | None:
    return value if isinstance(value, str) and is_valid_request_id(value) else None


def _trace_carrier(value: Any) -> dict[str, str] | None:
    # A message is input from whoever can write to the broker: keep a few short string headers only.
    if not isinstance(value, Mapping):
        return None
    carrier = {
        str(key)[:64]: item[:_MAX_TRACE_VALUE_LENGTH]
        for key, item in list(value.items())[:_MAX_TRACE_HEADERS]
        if isinstance(item, str)
    }
    return carrier or None


def task_label(name: str | None) -> str:
    """The task name as a bounded metric label and log field."""
    return (name or "<unknown>")[:MAX_TASK_NAME_LENGTH]


class RunContext:
    """The ids of one task message made current (request id, task id and name, command id), until :meth:`reset`.

    The run of a task has one, and so has the worker's "received" line, written before the run starts.
    """

    def __init__(self, task_id: str, task_name: str, header: Any = None) -> None:
        header = header if isinstance(header, Mapping) else {}
        self.task_name = task_label(task_name)
        # A task run inline (Celery's eager mode, Django's immediate backend) keeps the request's id.
        request_id = _valid_id(header.get("request_id")) or get_request_id() or generate_request_id()
        fields = {"task_id": str(task_id)[:MAX_TASK_NAME_LENGTH], "task_name": self.task_name}
        # From the message; or, for a task run inline, from the command running it.
        command_id = _valid_id(header.get("command_id")) or (get_work_fields() or {}).get("command_id")
        if command_id is not None:
            fields["command_id"] = command_id
        self.request_id = request_id
        self.fields = fields
        self._id_token = _set_request_id(request_id)
        self._bound = bind_contextvars(request_id=request_id, **fields)
        self._fields_token = set_work_fields(fields)

    def reset(self) -> None:
        """Restore the ids that were current before."""
        reset_work_fields(self._fields_token)
        reset_contextvars(**self._bound)
        reset_request_id(self._id_token)


class TaskRun:
    """One run of a task: its ids current for log lines, its span, and its count and duration when it ends.

    :meth:`finish` must be called in the same thread (and context) as the constructor.
    """

    def __init__(self, system: str, task_id: str, task_name: str, header: Any = None) -> None:
        header = header if isinstance(header, Mapping) else {}
        self.context = RunContext(task_id, task_name, header)
        self.task_name = self.context.task_name
        self.request_id = self.context.request_id
        self.span = self._start_span(system, self.context.fields, _trace_carrier(header.get("trace")))
        self.started = time.perf_counter()
        self._finished = False

    @staticmethod
    def _start_span(system: str, fields: Mapping[str, str], carrier: dict[str, str] | None) -> Span:
        tracer = get_tracer()
        if tracer is None:
            return NOOP_SPAN
        attributes = {"messaging.system": system, "task.id": fields["task_id"], "task.name": fields["task_name"]}
        return tracer.start_span(fields["task_name"], "consumer", carrier=carrier, attributes=attributes)

    def record_exception(self, exception: BaseException) -> None:
        """Record the exception the task raised on its span."""
        self.span.record_exception(exception)

    def finish(self, outcome: str, seconds: float | None = None) -> None:
        """Count the run, end its span and restore the context as it was before (idempotent)."""
        if self._finished:
            return
        self._finished = True
        elapsed = time.perf_counter() - self.started if seconds is None else seconds
        try:
            # Imported here: the metric store imports prometheus_client, which a task run alone does not need.
            from django_prodkit.tasks.metrics import record_task

            record_task(self.task_name, outcome, elapsed)
        finally:
            self.span.end(error=outcome == FAILED)
            self.context.reset()
