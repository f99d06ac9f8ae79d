"""The test site's URLs plus views that make their own spans (tests of the OpenTelemetry API and ``span()``)."""

from __future__ import annotations

from django.urls import path

from tests import views_otel
from tests.urls import urlpatterns as site

urlpatterns = [
    path("otel/user-spans/", views_otel.user_spans),
    path("otel/failing-span/", views_otel.failing_span),
    path("otel/async-span/", views_otel.async_span),
    *site,
]
