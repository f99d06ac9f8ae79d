"""The example on PostgreSQL: SQLite is its embedded default, and ``DATABASE_URL`` points it at PostgreSQL.

Uses the PostgreSQL on 127.0.0.1:5432 (user ``postgres``, trust), in a database of the test's own that it creates
and drops. Skipped when PostgreSQL does not answer, or failed with ``PRODKIT_REQUIRE_TOOLS=1``.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import demo
from tests.tools import REQUIRE_TOOLS

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


@pytest.fixture
def database_url() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    name = f"prodkit_example_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        if os.environ.get(REQUIRE_TOOLS) == "1":
            pytest.fail(f"PostgreSQL does not answer on 127.0.0.1:5432 ({exc}); {REQUIRE_TOOLS}=1 requires it")
        pytest.skip(f"PostgreSQL does not answer on 127.0.0.1:5432 ({exc})")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgres://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_example_serves_from_postgresql_when_given_a_database_url(tmp_path: Path, database_url: str) -> None:
    token = secrets.token_urlsafe(24)
    env = demo.server_environment(tmp_path, token)
    env["PYTHONPATH"] = ":".join(p for p in sys.path if p)
    env["DATABASE_URL"] = database_url
    demo.prepare_database(sys.executable, env, posts=5, static=False)
    with demo.running_server(sys.executable, env, tmp_path, workers=2) as server:
        status, _, body = demo.get(server.url + "/api/v1/posts/")
        ready, _, _ = demo.get(server.url + "/api/v1/healthcheck/ready/")
    assert status == 200, body
    assert ready == 200
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    [posts] = [line for line in lines if line.get("event") == "http_request" and line["path"] == "/api/v1/posts/"]
    assert posts["db_queries"] > 0
    # The example's settings chose PostgreSQL from the URL (an SQLite file would have been made in tmp_path).
    assert not (tmp_path / "db.sqlite3").exists()
