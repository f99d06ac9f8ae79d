"""The database figures, the N+1 warning and its literal stripping, and readiness on the databases and brokers
production sites run: PostgreSQL (psycopg 3, with and without Django's connection pool) and MariaDB, with RabbitMQ
as the broker. SQLite and Redis are covered by the rest of the suite.

Each backend runs ``tests/on_backend.py`` in a pytest of its own with ``tests.settings_backends``, which creates
and drops a test database of its own. The services are those on 127.0.0.1 (PostgreSQL 5432, MariaDB 3306, Redis
6379, RabbitMQ 5672); a test is skipped when its service does not answer, or fails with ``PRODKIT_REQUIRE_TOOLS=1``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.tools import REQUIRE_TOOLS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
BROKER_URL = f"amqp://guest:guest@{HOST}:5672//"
REDIS_URL = f"redis://{HOST}:6379/0"

POSTGRESQL = {"ENGINE": "django.db.backends.postgresql", "HOST": HOST, "PORT": 5432, "NAME": "test", "USER": "postgres"}
MARIADB = {"ENGINE": "django.db.backends.mysql", "HOST": HOST, "PORT": 3306, "NAME": "test", "USER": "root"}
BACKENDS = {
    "postgresql": (POSTGRESQL, "psycopg"),
    "postgresql-pool": ({**POSTGRESQL, "OPTIONS": {"pool": True}}, "psycopg_pool"),
    "mariadb": (MARIADB, "MySQLdb"),
}


def require_service(name: str, port: int, module: str | None = None) -> None:
    """Skip (or fail, with ``PRODKIT_REQUIRE_TOOLS=1``) when the service or its driver is missing."""
    problem = None
    if module is not None and importlib.util.find_spec(module) is None:
        problem = f"the driver {module} is not installed (the test dependency group has it)"
    else:
        try:
            socket.create_connection((HOST, port), timeout=2).close()
        except OSError as exc:
            problem = f"{name} does not answer on {HOST}:{port} ({exc})"
    if problem is not None:
        if os.environ.get(REQUIRE_TOOLS) == "1":
            pytest.fail(f"{problem}; {REQUIRE_TOOLS}=1 requires it")
        pytest.skip(problem)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_figures_warning_and_readiness_on(backend: str) -> None:
    database, driver = BACKENDS[backend]
    require_service(backend, int(database["PORT"]), driver)  # type: ignore[call-overload]
    require_service("RabbitMQ", 5672)
    require_service("Redis", 6379)
    # A test database of this run's own: other test runs may share the server.
    database = {**database, "TEST": {"NAME": f"test_prodkit_{uuid.uuid4().hex[:12]}"}}
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PRODKIT_TEST_DATABASE": json.dumps(database),
        "PRODKIT_TEST_BROKER_URL": BROKER_URL,
        "PRODKIT_TEST_REDIS_URL": REDIS_URL,
    }
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--no-header"]
    command += ["--ds", "tests.settings_backends", "-o", "addopts=", "tests/on_backend.py"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=200)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "4 passed" in result.stdout
