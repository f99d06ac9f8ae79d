"""URL patterns for the prodkit endpoints: ``path("api/v1/", include("django_prodkit.urls"))``."""

from __future__ import annotations

from django.urls import path

from django_prodkit import views

app_name = "prodkit"

urlpatterns = [
    path("healthcheck/", views.liveness, name="healthcheck"),
    path("healthcheck/ready/", views.readiness, name="readiness"),
    path("metrics/", views.metrics, name="metrics"),
]
