"""URLs of the task tests' web server: views that enqueue Celery tasks, and the metrics endpoint."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from django_prodkit.request_id import get_request_id
from tests import celery_app


def enqueue(request: HttpRequest, kind: str, label: str) -> JsonResponse:
    task = {"record": celery_app.record, "retry": celery_app.retry_once, "fan-out": celery_app.fan_out}.get(kind)
    result = celery_app.fail.delay() if task is None else task.delay(label)
    return JsonResponse({"request_id": get_request_id(), "task_id": result.id})


urlpatterns = [
    path("api/v1/enqueue/<slug:kind>/<slug:label>/", enqueue, name="enqueue"),
    path("api/v1/", include("django_prodkit.urls")),
]
