"""Settings for the task tests' web server and Celery worker: metrics, JSON logs, a view that enqueues."""

from __future__ import annotations

from django_prodkit.logging import configure_logging
from tests.settings import *  # noqa: F403
from tests.settings import MIDDLEWARE

MIDDLEWARE = [MIDDLEWARE[0], "django_prodkit.middleware.MetricsMiddleware", *MIDDLEWARE[1:]]
ROOT_URLCONF = "tests.urls_tasks"
LOGGING = configure_logging(fmt="json", loggers={"celery": {"handlers": [], "level": "WARNING", "propagate": True}})
PRODKIT = {"METRICS_TOKENS": ["e2e-token"]}
