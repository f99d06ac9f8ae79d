"""Liveness and readiness: the endpoints, the probes readiness runs, and the ``healthcheck`` command's client.

The probes (``probes``) are what the readiness endpoint runs against the site's dependencies (databases,
caches, Redis, the Celery broker, storage, the callables of ``HEALTH_CHECKS``; those of Redis, the broker
and storage are in ``dependencies``); ``checks`` holds the Django system checks about their settings.
"""

from __future__ import annotations

from django_prodkit.health.dependencies import CheckFailedError
from django_prodkit.health.probes import Check, CheckResult, ReadinessReport

__all__ = ["Check", "CheckFailedError", "CheckResult", "ReadinessReport"]
