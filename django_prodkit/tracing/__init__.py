"""Tracing behind one small interface: OpenTelemetry (:mod:`.otel`) and AWS X-Ray (:mod:`.xray`) backends.

Importing this package never imports a tracing SDK; a backend's modules are loaded only when it is turned on.
The ids of the current trace and span are on the unit of work's context, :mod:`django_prodkit.context`.
"""

from __future__ import annotations

from django_prodkit.context.trace import get_span_id, get_trace_id
from django_prodkit.tracing.spans import span

__all__ = ["get_span_id", "get_trace_id", "span"]
