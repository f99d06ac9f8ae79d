"""Run by ``tests/test_backends_e2e.py`` with ``tests.settings_backends``: the database figures and readiness on the
database given in ``PRODKIT_TEST_DATABASE`` (PostgreSQL, MariaDB), and the probes of the broker in
``PRODKIT_TEST_BROKER_URL`` and the Redis in ``PRODKIT_TEST_REDIS_URL``.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from django_prodkit.health.probes import configured_checks, run_checks
from tests.views_db import LITERAL_SQL

pytestmark = pytest.mark.django_db


def records(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == name]


@pytest.fixture
def warned(settings: Any, caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    settings.PRODKIT = {"DB_QUERY_WARNING": 3, "DB_QUERY_WARNING_INTERVAL": 0}
    caplog.set_level(logging.INFO, logger="django_prodkit")
    return caplog


def test_queries_are_counted_and_timed(warned: pytest.LogCaptureFixture) -> None:
    client = Client()
    for _ in range(2):
        assert client.get("/api/v1/db/three/").status_code == 200
    lines = records(warned, "django_prodkit.access")
    assert [line.db_queries for line in lines] == [3, 3]  # type: ignore[attr-defined]
    assert all(line.db_time_ms > 0 for line in lines)  # type: ignore[attr-defined]
    assert records(warned, "django_prodkit.db") == []


def test_the_n_plus_one_warning_names_the_shape_in_this_backends_quoting(warned: pytest.LogCaptureFixture) -> None:
    assert Client().get("/api/v1/db/n-plus-one/").status_code == 200
    [warning] = records(warned, "django_prodkit.db")
    assert (warning.db_queries, warning.n_plus_one, warning.reasons) == (20, True, ["queries"])  # type: ignore[attr-defined]
    [(shape, count)] = [(q["sql"], q["count"]) for q in warning.repeated_queries]  # type: ignore[attr-defined]
    quote = "`" if connection.vendor == "mysql" else '"'
    assert count == 20
    assert f"WHERE {quote}auth_user{quote}.{quote}id{quote} = ?" in shape
    assert "42" not in shape


def test_no_literal_of_this_backend_reaches_the_warning(warned: pytest.LogCaptureFixture) -> None:
    response = Client().get("/api/v1/db/literals/")
    assert response.status_code == 200
    [warning] = records(warned, "django_prodkit.db")
    shapes = [q["sql"] for q in warning.repeated_queries]  # type: ignore[attr-defined]
    assert len(shapes) == len(LITERAL_SQL[connection.vendor])
    assert all(shape.startswith("SELECT ?") for shape in shapes), shapes
    written = json.dumps(shapes)
    for secret in ("sec", "5345", "1010", "C:"):
        assert secret not in written


def test_readiness_probes_the_database_broker_and_redis(settings: Any) -> None:
    broker, redis_url = os.environ["PRODKIT_TEST_BROKER_URL"], os.environ["PRODKIT_TEST_REDIS_URL"]
    settings.PRODKIT = {"HEALTH_CHECK_BROKER_URL": broker, "HEALTH_CHECK_REDIS_URLS": [redis_url]}
    report = run_checks(configured_checks(), 5.0)
    results = {result.name: (result.ok, result.error) for result in report.results}
    assert results.pop("database:default") == (True, None)
    assert [name.split(":")[0] for name in results] == ["redis", "broker"]
    assert all(ok for ok, _ in results.values()), results
    assert "guest@" not in json.dumps(report.as_dict(show_errors=True))
