"""Each request's database queries: counted on every connection it uses, reported, and warned about."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import AsyncClient, Client, RequestFactory
from prometheus_client.parser import text_string_to_metric_families

from django_prodkit.conf import get_config, reset_config
from django_prodkit.db import counting as db
from django_prodkit.db.checks import check_database_figures
from django_prodkit.db.shapes import repeated_shapes, sql_shape
from django_prodkit.metrics.store import DB_QUERIES_METRIC, reset_store
from django_prodkit.tracing.backend import get_tracer, reset_tracer
from django_prodkit.tracing.base import DURATION_ATTRIBUTE, QUERY_COUNT_ATTRIBUTE
from tests.test_metrics_e2e import free_port, request
from tests.test_tracing_xray import Daemon
from tests.views_db import OTHER_ALIAS

ROOT = Path(__file__).resolve().parent.parent
ACCESS = "django_prodkit.access"
REQUEST_ID = "django_prodkit.middleware.RequestIDMiddleware"
ACCESS_LOG = "django_prodkit.middleware.AccessLogMiddleware"
METRICS = "django_prodkit.middleware.MetricsMiddleware"
TRACING = "django_prodkit.middleware.TracingMiddleware"
TOKEN = "db-token"


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "django_prodkit.db"]


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=ACCESS)
    return caplog


def wrapped_connections() -> list[str]:
    return [c.alias for c in connections.all(initialized_only=True) if db.count_query in c.execute_wrappers]


@pytest.mark.django_db
def test_a_view_with_three_queries_logs_them_and_the_next_request_starts_from_zero(
    access_log: pytest.LogCaptureFixture,
) -> None:
    client = Client()
    assert client.get("/api/v1/db/three/").status_code == 200
    assert client.get("/api/v1/db/three/").status_code == 200
    assert client.get("/api/v1/hello/").status_code == 200
    records = access_records(access_log)
    assert [r.db_queries for r in records] == [3, 3, 0]  # type: ignore[attr-defined]
    assert all(isinstance(r.db_time_ms, float) and r.db_time_ms >= 0 for r in records)  # type: ignore[attr-defined]
    assert records[0].db_time_ms > 0  # type: ignore[attr-defined]
    # Between requests nothing is counted, and a query outside any request goes through untouched.
    assert db.current() is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert db.current() is None
    assert warnings_of(access_log) == []


@pytest.mark.django_db
def test_n_plus_one_warning_names_the_repeated_shape_without_its_parameters(
    settings: Any, access_log: pytest.LogCaptureFixture
) -> None:
    settings.PRODKIT = {"DB_QUERY_WARNING": 10}
    client = Client()
    assert client.get("/api/v1/db/three/").status_code == 200
    assert warnings_of(access_log) == []
    response = client.get("/api/v1/db/n-plus-one/")
    assert response.status_code == 200
    [warning] = warnings_of(access_log)
    assert warning.levelno == logging.WARNING
    # One event for every such request, so log tools group them; the figures are fields.
    assert warning.getMessage() == "slow or query-heavy request"
    assert (warning.reasons, warning.db_query_warning, warning.n_plus_one) == (["queries"], 10, True)  # type: ignore[attr-defined]
    assert "N+1" in warning.hint  # type: ignore[attr-defined]
    assert "4207" not in str(warning.__dict__)
    assert "%s" not in str(warning.repeated_queries)  # type: ignore[attr-defined]
    assert warning.request_id == response["X-Request-ID"]  # type: ignore[attr-defined]
    assert warning.route == "/api/v1/db/n-plus-one/"  # type: ignore[attr-defined]
    assert warning.db_queries == 20  # type: ignore[attr-defined]
    [repeated] = warning.repeated_queries  # type: ignore[attr-defined]
    assert repeated["count"] == 20
    assert repeated["sql"] == (
        'SELECT "auth_user"."id", ... FROM "auth_user" WHERE "auth_user"."id" = ? ORDER BY "auth_user"."id" ASC LIMIT ?'
    )
    # The access line of that request carries the same figures.
    assert access_records(access_log)[-1].db_queries == 20  # type: ignore[attr-defined]


@pytest.mark.django_db
def test_slow_request_warning_from_the_environment(
    settings: Any, monkeypatch: pytest.MonkeyPatch, access_log: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PRODKIT_SLOW_REQUEST_MS", "5")
    settings.MIDDLEWARE = [REQUEST_ID]
    assert get_config()["SLOW_REQUEST_MS"] == 5.0
    client = Client()
    assert client.get("/api/v1/db/slow/").status_code == 200
    [warning] = warnings_of(access_log)
    assert (warning.reasons, warning.slow_request_ms, warning.db_queries) == (["duration"], 5.0, 1)  # type: ignore[attr-defined]
    assert warning.n_plus_one is False  # type: ignore[attr-defined]
    assert not hasattr(warning, "hint")
    assert warning.duration_ms > 5  # type: ignore[attr-defined]


@pytest.mark.django_db(transaction=True)
def test_an_async_views_orm_calls_are_counted_in_its_request(access_log: pytest.LogCaptureFixture) -> None:
    client = AsyncClient()
    for _ in range(2):
        response = async_to_sync(client.get)("/api/v1/db/async/")
        assert response.status_code == 200
    assert [r.db_queries for r in access_records(access_log)] == [3, 3]  # type: ignore[attr-defined]


@pytest.mark.django_db(transaction=True)
def test_queries_of_threads_running_at_once_for_one_request_are_all_counted(
    access_log: pytest.LogCaptureFixture,
) -> None:
    for _ in range(3):
        response = async_to_sync(AsyncClient().get)("/api/v1/db/parallel/")
        assert response.json() == {"queries": 200}
    assert [r.db_queries for r in access_records(access_log)] == [200, 200, 200]  # type: ignore[attr-defined]


@pytest.mark.django_db(transaction=True)
def test_concurrent_async_requests_count_only_their_own_queries(access_log: pytest.LogCaptureFixture) -> None:
    import asyncio

    async def many() -> list[int]:
        client = AsyncClient()
        paths = ["/api/v1/db/async/", "/api/v1/hello/"] * 5
        responses = await asyncio.gather(*(client.get(path) for path in paths))
        return [r.status_code for r in responses]

    assert async_to_sync(many)() == [200] * 10
    by_route = {(r.route, r.db_queries) for r in access_records(access_log)}  # type: ignore[attr-defined]
    assert by_route == {("/api/v1/db/async/", 3), ("/api/v1/hello/", 0)}


@pytest.fixture
def other_database(tmp_path: Path) -> Iterator[str]:
    """A second SQLite database, registered as the alias :data:`OTHER_ALIAS` for this test."""
    configured = connections.configure_settings(
        {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
            OTHER_ALIAS: {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "other.sqlite3")},
        }
    )
    connections.settings[OTHER_ALIAS] = configured[OTHER_ALIAS]
    yield OTHER_ALIAS
    connections[OTHER_ALIAS].close()
    del connections[OTHER_ALIAS]
    del connections.settings[OTHER_ALIAS]


def test_queries_on_every_database_are_counted(
    other_database: str, django_db_blocker: Any, access_log: pytest.LogCaptureFixture
) -> None:
    with django_db_blocker.unblock():
        assert Client().get("/api/v1/db/two-databases/").status_code == 200
    assert access_records(access_log)[-1].db_queries == 3  # type: ignore[attr-defined]
    assert {"default", other_database} <= set(wrapped_connections())


@pytest.mark.django_db
def test_counting_is_off_and_no_wrapper_installed_when_nothing_reports(settings: Any) -> None:
    settings.MIDDLEWARE = [REQUEST_ID, "django.middleware.common.CommonMiddleware"]
    assert Client().get("/api/v1/db/three/").status_code == 200
    assert wrapped_connections() == []
    # A fresh connection in another thread gets none either.
    seen: list[bool] = []

    def query() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            seen.append(db.count_query in connection.execute_wrappers)
        finally:
            BaseDatabaseWrapper.close(connection)  # close() keeps in-memory SQLite open

    worker = threading.Thread(target=query)
    worker.start()
    worker.join(10)
    assert seen == [False]
    # Turned off explicitly, with the access log installed: no fields, no wrapper.
    settings.MIDDLEWARE = [REQUEST_ID, ACCESS_LOG]
    settings.PRODKIT = {"DB_QUERY_COUNTING": False, "DB_QUERY_WARNING": 1}
    assert Client().get("/api/v1/db/three/").status_code == 200
    assert wrapped_connections() == []


@pytest.mark.django_db
def test_a_connection_opened_inside_a_users_execute_wrapper_block_keeps_both_wrappers() -> None:
    db_wrapper_installed: list[list[Any]] = []
    calls: list[str] = []

    def users_wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        calls.append(sql)
        return execute(sql, params, many, context)

    def in_fresh_thread() -> None:
        try:
            with connection.execute_wrapper(users_wrapper), connection.cursor() as cursor:
                # The connection opens here, inside the user's block: ours is added as it opens.
                cursor.execute("SELECT 1")
            db_wrapper_installed.append(list(connection.execute_wrappers))
        finally:
            BaseDatabaseWrapper.close(connection)  # close() keeps in-memory SQLite open

    db.install()
    try:
        worker = threading.Thread(target=in_fresh_thread)
        worker.start()
        worker.join(10)
    finally:
        db.uninstall()
    assert calls == ["SELECT 1"]
    assert db_wrapper_installed == [[db.count_query]]


def test_statements_that_are_not_strings_are_counted_but_not_named() -> None:
    class Composed:
        """Like psycopg's sql.Composed: a statement object that is not hashable."""

        __hash__ = None  # type: ignore[assignment]

    counter = db.RequestCounter(1, None)
    token = counter.begin()
    try:
        results = [db.count_query(lambda *args: "done", sql, None, False, {}) for sql in (Composed(), "SELECT 1")]
        stats = db.current()
        assert stats is not None
        assert (results, stats.count, stats.statements) == (["done", "done"], 2, {("", "SELECT 1"): 1})
    finally:
        counter.end(token, RequestFactory().get("/"))
    assert db.current() is None


def test_sql_shapes_strip_literals_and_collapse_lists() -> None:
    shape = sql_shape
    assert (
        shape("SELECT * FROM t WHERE a = %s AND b = 'it''s' AND c = 42")
        == "SELECT * FROM t WHERE a = ? AND b = ? AND c = ?"
    )
    assert shape('SELECT "t0"."col1" FROM "table2" t0 WHERE id IN (%s, %s, %s)') == (
        'SELECT "t0"."col1" FROM "table2" t0 WHERE id IN (?, ...)'
    )
    assert (
        shape("INSERT INTO t (a, b) VALUES (%s, %s), (%s, %s), (%s, %s)") == "INSERT INTO t (a, b) VALUES (?, ...), ..."
    )
    assert shape("SELECT 1.5e3 FROM x\n\t WHERE a = -7 LIMIT 21") == "SELECT ? FROM x WHERE a = -? LIMIT ?"
    assert shape("SELECT %(name)s, $1") == "SELECT ?, ?"
    assert shape('SELECT DISTINCT "a"."x", "a"."y" FROM "a" WHERE "a"."x" IN (SELECT "b"."x", "b"."z" FROM "b")') == (
        'SELECT DISTINCT "a"."x", ... FROM "a" WHERE "a"."x" IN (SELECT "b"."x", ... FROM "b")'
    )
    assert shape("SELECT COUNT(*) AS n, MAX(a) FROM t") == "SELECT COUNT(*) AS n, MAX(a) FROM t"
    assert len(shape("SELECT " + "a, " * 400 + "b")) == 300
    statements = {
        (vendor, sql): count
        for vendor, sql, count in [
            ("sqlite", "SELECT %s", 2),
            ("postgresql", "SELECT 5", 3),
            ("sqlite", "UPDATE t SET a = 1", 1),
            ("mysql", "DELETE FROM t", 1),
            ("sqlite", "SELECT a", 1),
        ]
    }
    assert repeated_shapes(statements) == [("SELECT ?", 5), ("DELETE FROM t", 1), ("SELECT a", 1)]


@pytest.mark.django_db
def test_queries_per_request_reach_the_metrics_json_and_prometheus(settings: Any) -> None:
    settings.MIDDLEWARE = [REQUEST_ID, METRICS]
    settings.PRODKIT = {"METRICS_TOKENS": [TOKEN]}
    reset_store()
    try:
        client = Client(headers={"authorization": f"Bearer {TOKEN}"})
        for path in ("/api/v1/db/three/", "/api/v1/db/three/", "/api/v1/hello/"):
            assert client.get(path).status_code == 200
        data = client.get("/api/v1/metrics/").json()
        assert data["db_queries_avg"] == {"GET /api/v1/db/three/": 3.0, "GET /api/v1/hello/": 0.0}
        text = client.get("/api/v1/metrics/?format=prometheus").content.decode()
    finally:
        reset_store()
    samples = {
        (s.name, s.labels.get("route"), s.labels.get("le")): s.value
        for family in text_string_to_metric_families(text)
        if family.name == DB_QUERIES_METRIC
        for s in family.samples
    }
    assert samples[(DB_QUERIES_METRIC + "_sum", "/api/v1/db/three/", None)] == 6.0
    assert samples[(DB_QUERIES_METRIC + "_count", "/api/v1/db/three/", None)] == 2.0
    assert samples[(DB_QUERIES_METRIC + "_bucket", "/api/v1/db/three/", "2.0")] == 0.0
    assert samples[(DB_QUERIES_METRIC + "_bucket", "/api/v1/db/three/", "3.0")] == 2.0
    assert samples[(DB_QUERIES_METRIC + "_bucket", "/api/v1/hello/", "0.0")] == 1.0


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    listener = Daemon()
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", listener.address)
    reset_tracer()
    yield listener
    reset_tracer()
    listener.sock.close()


@pytest.mark.django_db
def test_the_trace_gets_the_query_count_and_time_and_tracing_alone_turns_counting_on(
    settings: Any, daemon: Daemon
) -> None:
    settings.PRODKIT = {"XRAY": {"ENABLED": True, "CENTRALIZED_SAMPLING": False, "SAMPLING": False}}
    settings.MIDDLEWARE = [REQUEST_ID, TRACING]
    assert Client().get("/api/v1/db/three/").status_code == 200
    [segment] = daemon.segments()
    figures = segment["metadata"]["default"]
    assert figures[QUERY_COUNT_ATTRIBUTE] == 3
    assert isinstance(figures[DURATION_ATTRIBUTE], float)
    assert figures[DURATION_ATTRIBUTE] > 0


@pytest.mark.django_db
@pytest.mark.timeout(60)
def test_the_opentelemetry_server_span_gets_the_query_count_and_time(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.otlp_receiver import Receiver

    for name in ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_PROPAGATORS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    receiver = Receiver()
    reset_tracer()
    try:
        settings.PRODKIT = {"OTEL": {"ENABLED": True, "ENDPOINT": receiver.url}}
        settings.MIDDLEWARE = [REQUEST_ID, TRACING]
        assert Client().get("/api/v1/db/three/").status_code == 200
        tracer: Any = get_tracer()
        assert tracer.provider.force_flush(10_000)
        [span] = receiver.spans
    finally:
        reset_tracer()
        receiver.close()
    assert span.kind == "server"
    assert span.attributes[QUERY_COUNT_ATTRIBUTE] == 3
    assert span.attributes[DURATION_ATTRIBUTE] > 0


def test_thresholds_parse_strictly_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODKIT_DB_QUERY_WARNING", " 25 ")
    monkeypatch.setenv("PRODKIT_SLOW_REQUEST_MS", "750.5")
    assert (get_config()["DB_QUERY_WARNING"], get_config()["SLOW_REQUEST_MS"]) == (25, 750.5)
    reset_config()
    for value in ("off", "", "None"):
        monkeypatch.setenv("PRODKIT_DB_QUERY_WARNING", value)
        monkeypatch.setenv("PRODKIT_SLOW_REQUEST_MS", value)
        reset_config()
        assert (get_config()["DB_QUERY_WARNING"], get_config()["SLOW_REQUEST_MS"]) == (None, None)
    monkeypatch.delenv("PRODKIT_SLOW_REQUEST_MS")
    for bad in ("0", "-3", "2.5", "many", "1e3"):
        monkeypatch.setenv("PRODKIT_DB_QUERY_WARNING", bad)
        reset_config()
        with pytest.raises(ImproperlyConfigured, match="PRODKIT_DB_QUERY_WARNING"):
            get_config()
    monkeypatch.delenv("PRODKIT_DB_QUERY_WARNING")
    for bad in ("0", "-1", "nan", "inf", "fast"):
        monkeypatch.setenv("PRODKIT_SLOW_REQUEST_MS", bad)
        reset_config()
        with pytest.raises(ImproperlyConfigured, match="PRODKIT_SLOW_REQUEST_MS"):
            get_config()


def test_checks(settings: Any) -> None:
    assert check_database_figures() == []
    settings.PRODKIT = {"DB_QUERY_WARNING": 0, "SLOW_REQUEST_MS": float("nan")}
    assert [m.id for m in check_database_figures()] == ["prodkit.E080", "prodkit.E081"]
    settings.PRODKIT = {"SLOW_REQUEST_MS": -1}
    assert [m.id for m in check_database_figures()] == ["prodkit.E081"]
    settings.PRODKIT = {"DB_QUERY_WARNING": 50}
    assert check_database_figures() == []
    settings.MIDDLEWARE = [ACCESS_LOG]
    assert [m.id for m in check_database_figures()] == ["prodkit.W080"]
    settings.PRODKIT = {}
    assert check_database_figures() == []


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_queries_per_request_are_exact_across_gunicorn_workers(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings_server", "PYTHONPATH": str(ROOT)}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "multiproc")
    command = [sys.executable, "-m", "gunicorn", "-c", "python:django_prodkit.gunicorn", "tests.wsgi:application"]
    command += ["--workers", "2", "--max-requests", "7", "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    with log.open("wb") as output:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    headers = {"Authorization": "Bearer e2e-token"}
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, log.read_text()
            try:
                if request(port, "GET", "/api/v1/healthcheck/")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        for _ in range(20):
            assert request(port, "GET", "/api/v1/db/raw/")[0] == 200
        status, body = request(port, "GET", "/api/v1/metrics/", headers)
        assert status == 200
        data = json.loads(body)
        status, text = request(port, "GET", "/api/v1/metrics/?format=prometheus", headers)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert data["mode"] == "multiprocess"
    assert data["db_queries_avg"]["GET /api/v1/db/raw/"] == 3.0
    samples = {
        (s.name, s.labels["route"]): s.value
        for family in text_string_to_metric_families(text.decode())
        if family.name == DB_QUERIES_METRIC
        for s in family.samples
        if "le" not in s.labels
    }
    assert samples[(DB_QUERIES_METRIC + "_count", "/api/v1/db/raw/")] == 20
    assert samples[(DB_QUERIES_METRIC + "_sum", "/api/v1/db/raw/")] == 60
