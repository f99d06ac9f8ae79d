"""Liveness and readiness: the endpoints, the probes readiness runs, and the ``healthcheck`` command's client.

The probes (``probes``) are what the readiness endpoint runs against the site's dependencies (databases,
caches, the callables of ``HEALTH_CHECKS``); ``checks`` holds the Django system checks about their settings.
"""

from __future__ import annotations

from django_prodkit.health.probes import Check, CheckFailedError, CheckResult, ReadinessReport

__all__ = ["Check", "CheckFailedError", "CheckResult", "ReadinessReport"]
