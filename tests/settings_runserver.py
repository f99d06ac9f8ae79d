"""Settings for ``runserver`` in tests/test_runserver_log.py: the test settings with JSON logging to stdout."""

from __future__ import annotations

from django_prodkit.logging import configure_logging
from tests.settings import *  # noqa: F403

LOGGING = configure_logging(fmt="json")
