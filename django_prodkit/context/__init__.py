"""The shared context of the current unit of work: a request, a task run or a command run.

Producers write it (the request id middleware, the task integrations, the tracing backends, the database
counter) and consumers read it (log lines, the access line, spans, metrics, outgoing calls). It imports no
other part of the package, so a consumer never depends on the producer of what it reads.
"""

from __future__ import annotations

from django_prodkit.context.figures import QueryFigures, add_query_fields, query_figures
from django_prodkit.context.ids import get_request_id
from django_prodkit.context.trace import get_span_id, get_trace_id
from django_prodkit.context.work import get_work_fields

__all__ = [
    "QueryFigures",
    "add_query_fields",
    "get_request_id",
    "get_span_id",
    "get_trace_id",
    "get_work_fields",
    "query_figures",
]
