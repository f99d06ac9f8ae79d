"""Tracing behind one small interface: OpenTelemetry (:mod:`.otel`) and AWS X-Ray (:mod:`.xray`) backends.

Importing this package never imports a tracing SDK; a backend's modules are loaded only when it is turned on.
"""

from __future__ import annotations

from django_prodkit.tracing.context import get_span_id, get_trace_id
from django_prodkit.tracing.spans import span

__all__ = ["get_span_id", "get_trace_id", "span"]
