"""A URLconf without django_prodkit.urls, for checks that depend on the endpoints being routed."""

from __future__ import annotations

from django.urls import include, path

from tests.urls import api

urlpatterns = [path("api/v1/", include(api))]
