"""Settings for the gunicorn server of tests/test_readiness_flood.py: a readiness check that counts its runs.

PRODKIT_TEST_PROBE_LOG and PRODKIT_TEST_REUSE_SECONDS are test-only variables read here, not by the library.
"""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import MIDDLEWARE

MIDDLEWARE = [MIDDLEWARE[0], MIDDLEWARE[1], "django_prodkit.middleware.HealthCheckMiddleware", *MIDDLEWARE[2:]]

LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}

PRODKIT = {
    "HEALTH_CHECKS": ["tests.test_readiness_flood.counted_check"],
    "HEALTH_CHECK_CACHES": [],
    "HEALTH_CHECK_REUSE_SECONDS": float(os.environ.get("PRODKIT_TEST_REUSE_SECONDS", "1")),
}
