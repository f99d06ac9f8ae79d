"""Test settings with MetricsMiddleware and CloudWatch publishing on, for the gunicorn tests.

The tests vary the mode, service and timings through PRODKIT_TEST_CW_* variables (test-only; the library
itself reads only the documented variables).
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import MIDDLEWARE

MIDDLEWARE = [MIDDLEWARE[0], "django_prodkit.middleware.MetricsMiddleware", *MIDDLEWARE[1:]]

PRODKIT = {
    "SERVICE_NAME": os.environ.get("PRODKIT_TEST_CW_SERVICE", "cloudwatch-tests"),
    "CLOUDWATCH": {
        "ENABLED": True,
        "MODE": os.environ.get("PRODKIT_TEST_CW_MODE", "api"),
        "NAMESPACE": "ProdkitTests",
        "FLUSH_INTERVAL": float(os.environ.get("PRODKIT_TEST_CW_FLUSH_INTERVAL", "1")),
        "API_TIMEOUT": float(os.environ.get("PRODKIT_TEST_CW_API_TIMEOUT", "1")),
        "DIMENSIONS": {"Environment": "test"},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
    "loggers": {"django_prodkit.cloudwatch": {"handlers": ["stderr"], "level": "INFO"}},
}
