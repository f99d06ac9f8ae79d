"""Thin views for the prodkit endpoints; the work lives in ``health`` (and ``metrics``)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from django_prodkit.conf import get_config
from django_prodkit.health.endpoints import liveness_payload
from django_prodkit.health.readiness import readiness_report


@never_cache
@require_safe
def liveness(request: HttpRequest) -> JsonResponse:
    """Answer 200 with version and uptime without touching any database or cache."""
    return JsonResponse(liveness_payload())


@never_cache
@require_safe
def readiness(request: HttpRequest) -> JsonResponse:
    """Run the configured readiness checks; 200 when all pass, 503 naming each failing check.

    The endpoint answers anyone, before host validation: a failure's message (paths, host names) is shown
    only with ``DEBUG`` or ``HEALTH_CHECK_SHOW_ERRORS``; the log always has it.
    """
    report = readiness_report()
    body = report.as_dict(show_errors=settings.DEBUG or get_config()["HEALTH_CHECK_SHOW_ERRORS"])
    return JsonResponse(body, status=200 if report.ok else 503)


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Request metrics as JSON, or Prometheus text with ``?format=prometheus``; Bearer token or staff only."""
    # Imported here: prometheus_client picks its mode on import, which must follow the settings.
    from django_prodkit.metrics.endpoint import serve

    return serve(request)
