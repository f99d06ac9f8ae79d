"""Logging: ``configure_logging``, the request-id filter, the JSON and console formatters, and the access line.

The path settings modules import; the work is in :mod:`django_prodkit.logs`.
"""

from __future__ import annotations

from django_prodkit.logs.access import ACCESS_EVENT, access_log_fields, write_access_line
from django_prodkit.logs.formatting import (
    LOG_FORMATS,
    ConsoleFormatter,
    JSONFormatter,
    RequestIDFilter,
    configure_logging,
)

__all__ = [
    "ACCESS_EVENT",
    "LOG_FORMATS",
    "ConsoleFormatter",
    "JSONFormatter",
    "RequestIDFilter",
    "access_log_fields",
    "configure_logging",
    "write_access_line",
]
