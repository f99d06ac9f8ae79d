"""Every concern's Django system checks in one list: registered from ``AppConfig.ready``, their ids documented.

Each concern keeps its checks in its own ``checks.py`` with a ``CHECK_IDS`` table and a ``register()``;
:data:`CHECK_IDS` is their union (an id defined twice is an error, tested), listed in ``docs/checks.md``.
"""

from __future__ import annotations

from types import ModuleType

from django_prodkit.cloudwatch import checks as cloudwatch_checks
from django_prodkit.conf import checks as conf_checks
from django_prodkit.db import checks as db_checks
from django_prodkit.health import checks as health_checks
from django_prodkit.logs import checks as logs_checks
from django_prodkit.metrics import checks as metrics_checks
from django_prodkit.metrics.otlp import checks as otlp_metrics_checks
from django_prodkit.objectives import checks as objectives_checks
from django_prodkit.outbound import checks as outbound_checks
from django_prodkit.security import checks as security_checks
from django_prodkit.stack import checks as stack_checks
from django_prodkit.tracing import checks as tracing_checks
from django_prodkit.tracing.otel import checks as otel_checks

#: The checks module of every concern, in the order their messages are reported.
CONCERNS: tuple[ModuleType, ...] = (
    conf_checks,
    stack_checks,
    logs_checks,
    health_checks,
    security_checks,
    metrics_checks,
    otlp_metrics_checks,
    db_checks,
    cloudwatch_checks,
    tracing_checks,
    otel_checks,
    outbound_checks,
    objectives_checks,
)

#: The id tables of each concern; :data:`CHECK_IDS` is their union.
CHECK_ID_TABLES: tuple[dict[str, str], ...] = tuple(module.CHECK_IDS for module in CONCERNS)

#: Every check id this package can report, with a one-line summary (the docs list them all).
CHECK_IDS: dict[str, str] = {key: value for table in CHECK_ID_TABLES for key, value in table.items()}


def register_all() -> None:
    """Register every concern's checks with Django (called from ``AppConfig.ready``)."""
    for module in CONCERNS:
        module.register()
