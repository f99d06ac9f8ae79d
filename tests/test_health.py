"""Liveness, readiness and HealthCheckMiddleware, against real SQLite files, caches and threads."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.cache.backends.base import BaseCache
from django.core.management import call_command
from django.db import connections
from django.test import AsyncClient, Client

from django_prodkit.health import probes as health
from django_prodkit.health import readiness
from django_prodkit.health.checks import check_health_config, check_health_errors_hidden, check_health_middleware

LIVENESS = "/api/v1/healthcheck/"
READINESS = "/api/v1/healthcheck/ready/"
FILE_ALIAS = "health_file"
PROBE_HOST = "10.0.3.17:8000"

HEALTH_MIDDLEWARE = "django_prodkit.middleware.HealthCheckMiddleware"
STACK = [
    "django_prodkit.middleware.RequestIDMiddleware",
    "django_prodkit.middleware.AccessLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

#: Set at teardown to let the hanging check return.
RELEASE = threading.Event()
CALLS: list[str] = []


class ExplodingCache(BaseCache):
    """A cache whose server refuses every connection."""

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)

    def set(self, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("cache server refused the connection")


def hangs() -> None:
    CALLS.append("hangs")
    RELEASE.wait(10)


def passes() -> None:
    CALLS.append("passes")


def says_no() -> bool:
    return False


def raises() -> None:
    raise RuntimeError("queue is 900 messages behind")


def queries_file_db() -> None:
    with connections[FILE_ALIAS].cursor() as cursor:  # this thread's own connection, as an ORM check would use
        cursor.execute("SELECT count(*) FROM post")


NOT_CALLABLE = 42

#: An empty URLconf, for the system check that wants the health URLs.
urlpatterns: list[Any] = []


def body(response: Any) -> dict[str, Any]:
    return dict(json.loads(response.content))


def fds_open_on(path: Path) -> int:
    """How many of this process's file descriptors point at ``path`` (Linux)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            continue
    return count


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[Path]:
    """A real SQLite file registered as the database alias ``health_file`` (busy timeout 0.2 s)."""
    path = tmp_path / "health.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE post (id INTEGER PRIMARY KEY)")
    db.close()
    configured = connections.configure_settings(
        {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
            FILE_ALIAS: {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path), "OPTIONS": {"timeout": 0.2}},
        }
    )
    connections.settings[FILE_ALIAS] = configured[FILE_ALIAS]
    yield path
    del connections.settings[FILE_ALIAS]


@pytest.fixture
def db_open(django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():
        yield


@pytest.fixture(autouse=True)
def _errors_shown(settings: Any) -> None:
    # Most tests here read the failure messages, which the readiness body shows only in DEBUG (or when asked).
    settings.DEBUG = True


@pytest.fixture(autouse=True)
def _release_hung_checks() -> Iterator[None]:
    RELEASE.clear()
    CALLS.clear()
    yield
    RELEASE.set()
    assert health.wait_for_running_checks(10)


def test_readiness_passes_with_every_database_and_cache(
    client: Client, settings: Any, sqlite_file: Path, db_open: None
) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(sqlite_file.parent),
        },
        # Neither proves anything about the site: one stores nothing, the other only in this process.
        "off": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    response = client.get(READINESS)
    assert response.status_code == 200, response.content
    data = body(response)
    assert data["status"] == "ok"
    assert data["failing"] == []
    assert set(data["checks"]) == {"database:default", f"database:{FILE_ALIAS}", "cache:default"}
    assert response["Cache-Control"] == "max-age=0, no-cache, no-store, must-revalidate, private"


def test_readiness_fails_on_a_locked_database_and_recovers_without_leaks(
    client: Client, settings: Any, sqlite_file: Path, db_open: None
) -> None:
    settings.PRODKIT = {"HEALTH_CHECK_DATABASES": [FILE_ALIAS], "HEALTH_CHECK_CACHES": []}
    locker = sqlite3.connect(sqlite_file, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        response = client.get(READINESS)
    finally:
        locker.close()
    assert response.status_code == 503
    data = body(response)
    assert data["failing"] == [f"database:{FILE_ALIAS}"]
    assert "database is locked" in data["checks"][f"database:{FILE_ALIAS}"]["error"]

    settings.PRODKIT = {**settings.PRODKIT, "HEALTH_CHECKS": ["tests.test_health.queries_file_db"]}
    for _ in range(3):
        assert client.get(READINESS).status_code == 200
    if Path("/proc/self/fd").is_dir():
        assert fds_open_on(sqlite_file) == 0
    assert connections[FILE_ALIAS].connection is None  # the request thread's connection was never used


@pytest.mark.parametrize(
    ("damage", "reason"),
    [("corrupt", "file is not a database"), ("missing_dir", "unable to open database file")],
)
def test_readiness_fails_on_a_database_that_is_down(
    client: Client, settings: Any, sqlite_file: Path, db_open: None, damage: str, reason: str
) -> None:
    settings.PRODKIT = {"HEALTH_CHECK_DATABASES": [FILE_ALIAS], "HEALTH_CHECK_CACHES": []}
    if damage == "corrupt":
        sqlite_file.write_bytes(b"this is not an SQLite database, it is a text file" * 100)
    else:
        connections.settings[FILE_ALIAS]["NAME"] = str(sqlite_file.parent / "gone" / "db.sqlite3")
    response = client.get(READINESS)
    assert response.status_code == 503
    assert reason in body(response)["checks"][f"database:{FILE_ALIAS}"]["error"]


def test_readiness_fails_on_a_cache_that_raises(client: Client, settings: Any) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "sessions": {"BACKEND": "tests.test_health.ExplodingCache"},
    }
    settings.PRODKIT = {"HEALTH_CHECK_DATABASES": []}
    response = client.get(READINESS)
    assert response.status_code == 503
    data = body(response)
    assert data["failing"] == ["cache:sessions"]
    assert data["checks"]["cache:sessions"]["error"] == "ConnectionError: cache server refused the connection"
    assert "cache:default" not in data["checks"]  # per-process: skipped


def test_a_hung_check_fails_at_its_timeout_and_is_not_started_twice(client: Client, settings: Any) -> None:
    settings.PRODKIT = {
        "HEALTH_CHECKS": ["tests.test_health.hangs", "tests.test_health.passes"],
        "HEALTH_CHECK_TIMEOUT": 0.3,
        "HEALTH_CHECK_REUSE_SECONDS": 0.0,
        "HEALTH_CHECK_DATABASES": [],
        "HEALTH_CHECK_CACHES": [],
    }
    for _ in range(2):
        response = client.get(READINESS)
        assert response.status_code == 503
        data = body(response)
        assert data["failing"] == ["tests.test_health.hangs"]
        assert "no answer within 0.3 s" in data["checks"]["tests.test_health.hangs"]["error"]
        assert data["checks"]["tests.test_health.passes"]["status"] == "ok"
    assert CALLS.count("hangs") == 1
    assert CALLS.count("passes") == 2


def test_custom_check_failures_are_named(client: Client, settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings.PRODKIT = {
        "HEALTH_CHECKS": [
            "tests.test_health.passes",
            "tests.test_health.says_no",
            "tests.test_health.raises",
            "tests.test_health.missing",
            "tests.test_health.NOT_CALLABLE",
        ],
        "HEALTH_CHECK_DATABASES": [],
        "HEALTH_CHECK_CACHES": [],
    }
    data = body(client.get(READINESS))
    errors = {name: check.get("error") for name, check in data["checks"].items()}
    assert errors["tests.test_health.passes"] is None
    assert errors["tests.test_health.says_no"] == "CheckFailedError: the check returned False"
    assert errors["tests.test_health.raises"] == "RuntimeError: queue is 900 messages behind"
    assert "cannot import 'tests.test_health.missing'" in errors["tests.test_health.missing"]
    assert errors["tests.test_health.NOT_CALLABLE"].startswith("TypeError")
    assert "readiness check tests.test_health.raises failed" in caplog.text


def test_failure_messages_are_hidden_unless_debug_or_asked(settings: Any) -> None:
    # The endpoint answers anyone before host validation: exception text (paths, hosts) must not leak.
    settings.DEBUG = False
    settings.PRODKIT = {"HEALTH_CHECKS": ["tests.test_health.raises"], "HEALTH_CHECK_DATABASES": []}
    settings.MIDDLEWARE = [HEALTH_MIDDLEWARE, *STACK]
    client = Client()
    response = client.get(READINESS, HTTP_HOST=PROBE_HOST)
    assert response.status_code == 503
    data = body(response)
    assert data["failing"] == ["tests.test_health.raises"]
    assert data["checks"]["tests.test_health.raises"]["status"] == "fail"
    assert "900 messages" not in response.content.decode()
    assert "RuntimeError" not in response.content.decode()

    settings.PRODKIT = {**settings.PRODKIT, "HEALTH_CHECK_SHOW_ERRORS": True}
    shown = body(client.get(READINESS))["checks"]["tests.test_health.raises"]["error"]
    assert shown == "RuntimeError: queue is 900 messages behind"
    settings.PRODKIT = {**settings.PRODKIT, "HEALTH_CHECK_SHOW_ERRORS": False}
    settings.DEBUG = True
    assert "error" in body(client.get(READINESS))["checks"]["tests.test_health.raises"]


def test_liveness_answers_get_and_head_without_touching_dependencies(client: Client, settings: Any) -> None:
    # The database stays blocked by pytest-django and the only cache raises: liveness must not care.
    settings.CACHES = {"default": {"BACKEND": "tests.test_health.ExplodingCache"}}
    settings.PRODKIT = {"SERVICE_NAME": "blog-api", "SERVICE_VERSION": "2026.11.3"}
    response = client.get(LIVENESS)
    assert response.status_code == 200
    data = body(response)
    assert data["status"] == "ok"
    assert data["service"] == "blog-api"
    assert data["version"] == "2026.11.3"
    time.sleep(0.05)
    later = body(client.get(LIVENESS))
    assert later["uptime_seconds"] - data["uptime_seconds"] >= 0.04
    head = client.head(LIVENESS)
    assert head.status_code == 200
    assert head.content == b""
    assert client.post(LIVENESS).status_code == 405


def test_health_requests_are_not_access_logged(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="django_prodkit.access"):
        client.get(LIVENESS)
        client.get("/api/v1/hello/")
    paths = [record.path for record in caplog.records if record.name == "django_prodkit.access"]  # type: ignore[attr-defined]
    assert paths == ["/api/v1/hello/"]


def test_middleware_answers_an_ip_probe_and_keeps_host_validation_elsewhere(client: Client, settings: Any) -> None:
    settings.PRODKIT = {"HEALTH_CHECKS": ["tests.test_health.passes"], "HEALTH_CHECK_DATABASES": []}
    settings.SECURE_SSL_REDIRECT = True
    settings.MIDDLEWARE = STACK
    assert client.get(LIVENESS, HTTP_HOST=PROBE_HOST).status_code == 400  # the problem it solves

    settings.MIDDLEWARE = [HEALTH_MIDDLEWARE, *STACK]
    client = Client()  # a client loads the middleware once
    live = client.get(LIVENESS, HTTP_HOST=PROBE_HOST)
    assert live.status_code == 200
    assert body(live)["status"] == "ok"
    assert client.get(READINESS, HTTP_HOST=PROBE_HOST).status_code == 200
    assert client.get("/api/v1/hello/", HTTP_HOST=PROBE_HOST).status_code == 400
    assert client.get("/api/v1/hello/", secure=True, HTTP_HOST=PROBE_HOST).status_code == 400
    assert client.get("/api/v1/hello/").status_code == 301  # SSL redirect still applies to everything else
    assert client.get("/api/v1/healthcheck", HTTP_HOST=PROBE_HOST).status_code == 400  # exact paths only


def test_middleware_serves_configured_paths(client: Client, settings: Any) -> None:
    settings.MIDDLEWARE = [HEALTH_MIDDLEWARE, *STACK]
    settings.PRODKIT = {"HEALTH_CHECK_PATHS": [LIVENESS]}
    assert client.get(LIVENESS, HTTP_HOST=PROBE_HOST).status_code == 200
    assert client.get(READINESS, HTTP_HOST=PROBE_HOST).status_code == 400


def test_middleware_in_async_mode(settings: Any) -> None:
    settings.MIDDLEWARE = [HEALTH_MIDDLEWARE, *STACK]
    settings.PRODKIT = {
        "HEALTH_CHECKS": ["tests.test_health.passes"],
        "HEALTH_CHECK_DATABASES": [],
        "HEALTH_CHECK_CACHES": [],
    }
    client = AsyncClient()
    ready = async_to_sync(client.get)(READINESS, headers={"host": PROBE_HOST})
    assert ready.status_code == 200
    assert body(ready)["checks"]["tests.test_health.passes"]["status"] == "ok"
    other = async_to_sync(client.get)("/api/v1/hello/", headers={"host": PROBE_HOST})
    assert other.status_code == 400


def ids(messages: list[Any]) -> list[str]:
    return [message.id for message in messages]


def test_health_configuration_checks(settings: Any) -> None:
    assert check_health_config() == []
    settings.PRODKIT = {
        "HEALTH_CHECKS": ["tests.test_health.passes", "tests.test_health.missing", "tests.test_health.NOT_CALLABLE"],
        "HEALTH_CHECK_DATABASES": ["default", "replica"],
        "HEALTH_CHECK_CACHES": ["nope"],
        "HEALTH_CHECK_TIMEOUT": 0,
    }
    messages = check_health_config()
    assert ids(messages) == ["prodkit.E010", "prodkit.E010", "prodkit.E011", "prodkit.E012", "prodkit.E013"]
    assert "'replica'" in messages[2].msg
    settings.PRODKIT = {"HEALTH_CHECK_TIMEOUT": float("nan")}
    assert ids(check_health_config()) == ["prodkit.E013"]
    settings.PRODKIT = {"HEALTH_CHECK_TIMEOUT": float("inf")}
    assert ids(check_health_config()) == ["prodkit.E013"]
    settings.PRODKIT = {"HEALTH_CHECK_REUSE_SECONDS": -1}
    assert ids(check_health_config()) == ["prodkit.E050"]
    settings.PRODKIT = {"HEALTH_CHECK_REUSE_SECONDS": 0}
    assert check_health_config() == []


def test_error_text_shown_to_anyone_is_a_deploy_warning(settings: Any) -> None:
    settings.DEBUG = False
    assert check_health_errors_hidden() == []
    settings.PRODKIT = {"HEALTH_CHECK_SHOW_ERRORS": True}
    (warning,) = check_health_errors_hidden()
    assert warning.id == "prodkit.W050"
    settings.DEBUG = True  # development: the text is shown anyway
    assert check_health_errors_hidden() == []
    out, err = StringIO(), StringIO()
    settings.DEBUG = False
    call_command("check", "--deploy", "--tag", "security", stdout=out, stderr=err)
    assert "prodkit.W050" in out.getvalue() + err.getvalue()


BLOCKED = threading.Event()


def blocks() -> None:
    CALLS.append("blocks")
    BLOCKED.wait(10)


def test_probes_arriving_during_a_run_share_it(settings: Any) -> None:
    # Reuse off: only the sharing of a run in flight can keep the count at one.
    settings.PRODKIT = {
        "HEALTH_CHECKS": ["tests.test_health.blocks"],
        "HEALTH_CHECK_DATABASES": [],
        "HEALTH_CHECK_CACHES": [],
        "HEALTH_CHECK_REUSE_SECONDS": 0.0,
        "HEALTH_CHECK_TIMEOUT": 20.0,  # the run must outlast the slowest thread start on a busy machine
    }
    BLOCKED.clear()
    reports: list[health.ReadinessReport] = []
    threads = [threading.Thread(target=lambda: reports.append(readiness.readiness_report())) for _ in range(8)]
    threads[0].start()
    deadline = time.monotonic() + 10
    while "blocks" not in CALLS and time.monotonic() < deadline:
        time.sleep(0.01)
    for thread in threads[1:]:
        thread.start()
    shared = readiness._latest
    assert shared is not None
    # Release the check only once every other probe waits on the run in flight.
    while len(shared.future._waiters) < len(threads) - 1 and time.monotonic() < deadline:  # type: ignore[attr-defined]
        time.sleep(0.01)
    BLOCKED.set()
    for thread in threads:
        thread.join(10)
    assert len(reports) == len(threads)
    assert all(report is reports[0] for report in reports)
    assert CALLS.count("blocks") == 1
    # Nothing is reused afterwards with reuse 0: the next probe runs the check again.
    readiness.readiness_report()
    assert CALLS.count("blocks") == 2


def test_health_middleware_checks(settings: Any) -> None:
    settings.MIDDLEWARE = [HEALTH_MIDDLEWARE, *STACK]
    assert check_health_middleware() == []
    settings.MIDDLEWARE = [*STACK, HEALTH_MIDDLEWARE]
    assert ids(check_health_middleware()) == ["prodkit.W018"]
    settings.MIDDLEWARE = [
        "django_prodkit.middleware.RequestIDMiddleware",
        "django_prodkit.middleware.MetricsMiddleware",
        HEALTH_MIDDLEWARE,
        *STACK,
    ]
    assert check_health_middleware() == []
    settings.MIDDLEWARE = [HEALTH_MIDDLEWARE, *STACK]
    settings.ROOT_URLCONF = "tests.test_health"  # this module: no health URLs
    assert ids(check_health_middleware()) == ["prodkit.W019"]
    settings.ROOT_URLCONF = "tests.urls"
    settings.PRODKIT = {"HEALTH_CHECK_PATHS": ["/healthz/"]}
    assert ids(check_health_middleware()) == ["prodkit.W019"]
