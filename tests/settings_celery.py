"""Settings for the task tests' web server and Celery worker: metrics, JSON logs, a view that enqueues."""

from __future__ import annotations

from django_prodkit.logging import configure_logging
from tests.settings import *  # noqa: F403
from tests.settings import MIDDLEWARE

# TracingMiddleware removes itself unless ENABLE_XRAY=true (the end-to-end test sets it).
MIDDLEWARE = [
    MIDDLEWARE[0],
    "django_prodkit.middleware.MetricsMiddleware",
    "django_prodkit.middleware.TracingMiddleware",
    *MIDDLEWARE[1:],
]
ROOT_URLCONF = "tests.urls_tasks"
LOGGING = configure_logging(
    fmt="json",
    loggers={
        "celery": {"handlers": [], "level": "WARNING", "propagate": True},
        # The "Task ... received" line, which carries the message's ids.
        "celery.worker.strategy": {"handlers": [], "level": "INFO", "propagate": True},
    },
)
PRODKIT = {
    "METRICS_TOKENS": ["e2e-token"],
    "SERVICE_NAME": "tasks-e2e",
    "XRAY": {"ENABLED": False, "SAMPLING": False, "CENTRALIZED_SAMPLING": False},
}
