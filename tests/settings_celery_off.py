"""The test settings with the Celery integration turned off."""

from __future__ import annotations

from tests.settings import *  # noqa: F403

PRODKIT = {"CELERY_INTEGRATION": False}
