"""The warning line a log tool can group, its rate limit per route, and SQL shapes that never show a literal."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.core import checks
from django.test import Client

from django_prodkit.db.checks import check_database_figures
from django_prodkit.db.shapes import sql_shape
from django_prodkit.db.warning import EVENT, WarningLimiter
from django_prodkit.logging import JSONFormatter
from tests.test_doc_snippets import doc_json

REQUEST_ID = "django_prodkit.middleware.RequestIDMiddleware"
MY_ACCESS_LOG = "tests.custom_middleware.MyAccessLog"

#: One secret per literal form of the backends Django supports; none may reach a shape.
LITERAL_FORMS = [
    ("postgresql", "SELECT * FROM t WHERE a = E'sec\\'ret' AND b = 1", "SELECT * FROM t WHERE a = ? AND b = ?"),
    (
        "postgresql",
        "SELECT a FROM t WHERE b = $$sec'ret$$ OR b = $tag$ sec$$ret $tag$",
        "SELECT a FROM t WHERE b = ? OR b = ?",
    ),
    ("postgresql", "SELECT a FROM t WHERE b = U&'sec\\0072et' OR c = B'1010'", "SELECT a FROM t WHERE b = ? OR c = ?"),
    ("postgresql", "SELECT 'C:\\' AS p, 'secret' AS q", "SELECT ? AS p, ? AS q"),
    ("postgresql", 'SELECT "col" FROM "t" WHERE x = $1', 'SELECT "col" FROM "t" WHERE x = ?'),
    ("mysql", "SELECT 0xDEADBEEF, X'5345435245', 0b1010, B'01'", "SELECT ?, ?, ?, ?"),
    ("mysql", 'SELECT * FROM t WHERE a = "sec""ret" AND b = "sec\\"ret"', "SELECT * FROM t WHERE a = ? AND b = ?"),
    ("mysql", "SELECT * FROM t WHERE a = 'sec\\'ret' # secret\nAND b = 2", "SELECT * FROM t WHERE a = ? AND b = ?"),
    (
        "mysql",
        "SELECT a FROM `t` WHERE b = _utf8mb4'secret' OR c = N'secret'",
        "SELECT a FROM `t` WHERE b = ? OR c = ?",
    ),
    ("sqlite", "SELECT x FROM t -- secret\nWHERE a = X'53'", "SELECT x FROM t WHERE a = ?"),
    ("sqlite", "SELECT x /* secret 'quote */ FROM t WHERE a = 'it''s secret'", "SELECT x FROM t WHERE a = ?"),
    ("sqlite", "SELECT a FROM t WHERE b = 'unterminated secret", "SELECT a FROM t WHERE b = ?"),
    (
        "oracle",
        "SELECT a FROM t WHERE b IN (q'[sec'ret]', nq'{secret}', q'!secret!')",
        "SELECT a FROM t WHERE b IN (?, ...)",
    ),
    (
        None,
        "SELECT a FROM t WHERE b IN (E'secret', $$secret$$, 0x53) /* secret */",
        "SELECT a FROM t WHERE b IN (?, ...)",
    ),
]


@pytest.mark.parametrize(
    ("vendor", "sql", "expected"), LITERAL_FORMS, ids=[f"{v}-{i}" for i, (v, _, _) in enumerate(LITERAL_FORMS)]
)
def test_every_literal_form_is_taken_out(vendor: str | None, sql: str, expected: str) -> None:
    shape = sql_shape(sql, vendor)
    assert shape == expected
    for secret in ("sec", "53", "1010"):
        assert secret not in shape.lower()


def test_double_quotes_are_identifiers_except_on_mysql() -> None:
    sql = 'SELECT "auth_user"."id" FROM "auth_user" WHERE "auth_user"."id" = %s'
    assert sql_shape(sql, "postgresql") == sql_shape(sql, "sqlite") == sql.replace("%s", "?")
    assert sql_shape(sql, "mysql") == "SELECT ?.? FROM ? WHERE ?.? = ?"


def test_the_limiter_writes_once_per_route_per_interval_and_counts_the_rest() -> None:
    limiter = WarningLimiter(60.0)
    route, other = ("GET", "/a/"), ("GET", "/b/")
    assert limiter.admit(route, now=100.0) == 0
    assert [limiter.admit(route, now=100.0 + i) for i in range(1, 4)] == [None, None, None]
    assert limiter.admit(other, now=110.0) == 0  # another route has its own interval
    assert limiter.admit(route, now=160.0) == 3
    assert limiter.admit(route, now=161.0) is None
    assert limiter.admit(route, now=300.0) == 1
    every = WarningLimiter(0.0)
    assert [every.admit(route, now=1.0) for _ in range(3)] == [0, 0, 0]


@pytest.mark.django_db
def test_a_hot_n_plus_one_view_writes_one_line_then_counts_what_it_left_out(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.PRODKIT = {"DB_QUERY_WARNING": 10}
    caplog.set_level(logging.WARNING, logger="django_prodkit.db")
    client = Client()
    for _ in range(5):
        assert client.get("/api/v1/db/n-plus-one/").status_code == 200
    [line] = [r for r in caplog.records if r.name == "django_prodkit.db"]
    assert (line.getMessage(), line.suppressed, line.db_queries) == (EVENT, 0, 20)  # type: ignore[attr-defined]
    # The example in docs/database.md is a real line: the same keys and event.
    written = json.loads(JSONFormatter().format(line))
    documented = doc_json("database.md", "repeated_queries")
    assert set(written) == set(documented)
    assert written["event"] == documented["event"]
    # With the interval at 0, every request writes its line, each with nothing suppressed.
    caplog.clear()
    settings.PRODKIT = {"DB_QUERY_WARNING": 10, "DB_QUERY_WARNING_INTERVAL": 0}
    client = Client()  # the middleware reads the settings when it is built
    for _ in range(3):
        assert client.get("/api/v1/db/n-plus-one/").status_code == 200
    lines = [r for r in caplog.records if r.name == "django_prodkit.db"]
    assert [r.suppressed for r in lines] == [0, 0, 0]  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_a_subclassed_access_log_keeps_the_database_figures(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings.MIDDLEWARE = [REQUEST_ID, MY_ACCESS_LOG]
    caplog.set_level(logging.INFO, logger="django_prodkit.access")
    assert Client().get("/api/v1/db/three/").status_code == 200
    [line] = [r for r in caplog.records if r.name == "django_prodkit.access"]
    assert line.db_queries == 3  # type: ignore[attr-defined]


def test_a_subclassed_request_id_middleware_satisfies_the_warning_check(settings: Any) -> None:
    settings.PRODKIT = {"DB_QUERY_WARNING": 10}
    settings.MIDDLEWARE = ["tests.custom_middleware.MyRequestID"]
    assert check_database_figures() == []
    settings.MIDDLEWARE = []
    assert [m.id for m in check_database_figures()] == ["prodkit.W080"]


@pytest.mark.parametrize("interval", [-1, float("inf")])
def test_an_interval_that_is_not_a_number_of_seconds_is_an_error(settings: Any, interval: float) -> None:
    settings.PRODKIT = {"DB_QUERY_WARNING_INTERVAL": interval}
    [message] = check_database_figures()
    assert (message.id, message.level) == ("prodkit.E165", checks.ERROR)
    assert message.hint
