"""Settings and URLconf of the gunicorn servers ``benchmarks/metrics_e2e.py`` drives.

``PRODKIT_BENCH_STACK`` picks the middleware: ``default`` (startproject's), ``prodkit`` (plus
MetricsMiddleware), ``django-prometheus`` (plus its before/after pair), ``kit`` (plus request ids, metrics
and the JSON access log on stdout, as ``configure_logging`` sets it up) or ``bare-log`` (plus one bare stdlib
logging line per request on stdout, the least any access log costs).
"""

from __future__ import annotations

import os

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from benchmarks.stacks import DEFAULT_STACK
from django_prodkit.logging import configure_logging

STACK = os.environ.get("PRODKIT_BENCH_STACK", "default")

STACKS = {
    "default": DEFAULT_STACK,
    "prodkit": ["django_prodkit.middleware.MetricsMiddleware", *DEFAULT_STACK],
    "django-prometheus": [
        "django_prometheus.middleware.PrometheusBeforeMiddleware",
        *DEFAULT_STACK,
        "django_prometheus.middleware.PrometheusAfterMiddleware",
    ],
    "bare-log": [*DEFAULT_STACK, "benchmarks.stacks.BareAccessLogMiddleware"],
    "kit": [
        "django_prodkit.middleware.RequestIDMiddleware",
        "django_prodkit.middleware.MetricsMiddleware",
        *DEFAULT_STACK,
        "django_prodkit.middleware.AccessLogMiddleware",
    ],
}

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
ROOT_URLCONF = __name__
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_prodkit",
    *(["django_prometheus"] if STACK == "django-prometheus" else []),
]
MIDDLEWARE = STACKS[STACK]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
LOGGING = (
    configure_logging(fmt="json", json_encoder="json")  # the standard library's encoder, as installed by default
    if STACK == "kit"
    else {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
)
PRODKIT = {"METRICS_TOKENS": ["bench-token"], "METRICS_TOP_ENDPOINTS": 10}


def item(request: HttpRequest, slug: str) -> HttpResponse:
    """A small JSON-ish answer, like a cheap API view."""
    return HttpResponse(b'{"ok": true}', content_type="application/json")


urlpatterns = [
    path("bench/<slug:slug>/", item),
    path("api/v1/", include("django_prodkit.urls")),
]
