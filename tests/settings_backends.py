"""The test settings on another database: ``PRODKIT_TEST_DATABASE`` is the ``DATABASES["default"]`` entry, as JSON.

``tests/test_backends_e2e.py`` runs ``tests/on_backend.py`` with these settings against PostgreSQL (with and
without Django's connection pool) and MariaDB; pytest-django creates and drops the test database named in it.
"""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403

DATABASES = {"default": json.loads(os.environ["PRODKIT_TEST_DATABASE"])}
