"""Tracing behind one small interface: AWS X-Ray today, other backends (OpenTelemetry) beside it later.

Importing this package never imports a tracing SDK; :mod:`django_prodkit.tracing.xray` is loaded only when
tracing is turned on.
"""

from __future__ import annotations

from django_prodkit.tracing.context import get_trace_id

__all__ = ["get_trace_id"]
