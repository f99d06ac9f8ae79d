"""Settings for the gunicorn servers the end-to-end tests start: the test settings plus metrics."""

from __future__ import annotations

from tests.settings import *  # noqa: F403
from tests.settings import MIDDLEWARE

MIDDLEWARE = [MIDDLEWARE[0], "django_prodkit.middleware.MetricsMiddleware", *MIDDLEWARE[1:]]

# Quiet servers: the tests read responses, not logs.
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}

PRODKIT = {"METRICS_TOKENS": ["e2e-token"], "METRICS_TOP_ENDPOINTS": 50}
