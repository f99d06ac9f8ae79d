"""Settings for the uvicorn and gunicorn servers of tests/test_metrics_servers.py: metrics, logs on stderr.

Warnings go to stderr with the process id; access-log events as ``ACCESS <status> <route>``. X-Ray is on
when the test gives a daemon address (``AWS_XRAY_DAEMON_ADDRESS``), every request sampled.
"""

from __future__ import annotations

import os

from tests.settings_server import *  # noqa: F403
from tests.settings_server import MIDDLEWARE

MIDDLEWARE = [*MIDDLEWARE[:2], "django_prodkit.middleware.XRayMiddleware", *MIDDLEWARE[2:]]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(process)d %(levelname)s %(name)s %(message)s"},
        "access": {"format": "ACCESS %(status)s %(route)s"},
    },
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "plain"},
        "access": {"class": "logging.StreamHandler", "formatter": "access"},
    },
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {"django_prodkit.access": {"level": "INFO", "handlers": ["access"], "propagate": False}},
}

PRODKIT = {
    "METRICS_TOKENS": ["e2e-token"],
    "METRICS_TOP_ENDPOINTS": 50,
    "XRAY": {
        "ENABLED": "AWS_XRAY_DAEMON_ADDRESS" in os.environ,
        "CENTRALIZED_SAMPLING": False,
        "SAMPLING": False,
    },
}
