"""Readiness probes of Redis, the Celery broker and storage, against a private redis-server that goes down."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import Storage

from django_prodkit.health.probes import configured_checks, run_checks
from tests.test_metrics_e2e import free_port
from tests.tools import require_tool

PASSWORD = "redis-pa55-secret"


class PrivateRedis:
    """A redis-server on a free port of 127.0.0.1 with a password, stopped (and started again) by the test."""

    def __init__(self, directory: Path) -> None:
        self.binary = require_tool("redis-server")
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass", PASSWORD]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def readiness() -> dict[str, tuple[bool, str | None]]:
    report = run_checks(configured_checks(), 5.0)
    return {result.name: (result.ok, result.error) for result in report.results}


def only(settings: Any, **prodkit: Any) -> None:
    """Readiness probes nothing but what the test names."""
    settings.PRODKIT = {"HEALTH_CHECK_DATABASES": [], "HEALTH_CHECK_CACHES": [], "HEALTH_CHECK_STORAGES": [], **prodkit}


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_redis_the_broker_and_a_redis_cache_pass_while_up_and_fail_when_down(
    settings: Any, redis_server: PrivateRedis
) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_server.url},
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    settings.CELERY_BROKER_URL = redis_server.url
    only(settings, HEALTH_CHECK_REDIS_URLS=[redis_server.url], HEALTH_CHECK_CACHES=None)
    endpoint = f"redis://127.0.0.1:{redis_server.port}/0"
    names = ["cache:default", f"redis:{endpoint}", f"broker:{endpoint}"]
    assert readiness() == dict.fromkeys(names, (True, None))

    redis_server.stop()
    down = readiness()
    assert list(down) == names
    assert not any(ok for ok, _ in down.values())
    assert "Connection refused" in str(down[f"redis:{endpoint}"][1]) or "Error 111" in str(down[f"redis:{endpoint}"][1])
    assert PASSWORD not in str(down)

    redis_server.start()
    assert readiness() == dict.fromkeys(names, (True, None))


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_a_wrong_redis_password_fails_without_showing_it(settings: Any, redis_server: PrivateRedis) -> None:
    wrong = redis_server.url.replace(PASSWORD, "not-" + PASSWORD)
    only(settings, HEALTH_CHECK_REDIS_URLS=[wrong])
    [(ok, error)] = readiness().values()
    assert not ok
    assert "AuthenticationError" in str(error)
    assert PASSWORD not in str(error)


def test_the_broker_comes_from_celery_settings_or_the_setting_and_can_be_turned_off(settings: Any) -> None:
    only(settings)
    assert readiness() == {}
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
    assert [check.name for check in configured_checks()] == ["broker:amqp://127.0.0.1:5672//"]
    only(settings, HEALTH_CHECK_BROKER_URL="")
    assert configured_checks() == []
    only(settings, HEALTH_CHECK_BROKER_URL=f"redis://127.0.0.1:{free_port()}/1")
    [(ok, error)] = readiness().values()
    assert not ok
    assert "Connection refused" in str(error) or "Error 111" in str(error)


class UnreachableStorage(Storage):
    """A remote storage whose service does not answer (what S3 or GCS raise when the network is down)."""

    def exists(self, name: str) -> bool:
        raise ConnectionError("could not reach the storage service")


def test_the_default_storage_must_be_writable_or_answer(settings: Any, tmp_path: Path) -> None:
    only(settings, HEALTH_CHECK_STORAGES=None)
    settings.MEDIA_ROOT = ""
    assert configured_checks() == []  # nothing set up for files: the current directory says nothing
    settings.MEDIA_ROOT = str(tmp_path / "media" / "not-made-yet")
    assert readiness() == {"storage:default": (True, None)}  # Django makes it on the first save
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings.MEDIA_ROOT = str(blocker / "media")
    assert readiness() == {
        "storage:default": (False, "CheckFailedError: the directory of storage 'default' cannot be written to")
    }
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "tests.test_health_dependencies.UnreachableStorage"},
    }
    assert readiness() == {"storage:default": (False, "ConnectionError: could not reach the storage service")}


def test_unknown_storages_and_urls_that_are_not_redis_are_errors_that_show_no_password(settings: Any) -> None:
    from django_prodkit.health.checks import check_health_config

    only(settings, HEALTH_CHECK_STORAGES=["uploads"], HEALTH_CHECK_REDIS_URLS=[f"http://u:{PASSWORD}@cache:6379/"])
    messages = check_health_config()
    assert [m.id for m in messages] == ["prodkit.E166", "prodkit.E167"]
    assert PASSWORD not in str([m.msg for m in messages])
    assert all(m.hint for m in messages)


@pytest.mark.parametrize(
    ("setting", "module", "check_id"),
    [
        ({"HEALTH_CHECK_REDIS_URLS": ["redis://cache:6379/0"]}, "redis", "prodkit.E168"),
        ({"HEALTH_CHECK_BROKER_URL": "amqp://mq//"}, "kombu", "prodkit.E169"),
    ],
)
def test_a_probe_whose_client_is_not_installed_is_an_error(
    settings: Any, monkeypatch: pytest.MonkeyPatch, setting: dict[str, Any], module: str, check_id: str
) -> None:
    from django_prodkit.health.checks import check_health_config

    only(settings, **setting)
    assert check_health_config() == []
    monkeypatch.setitem(sys.modules, module, None)  # what makes ``import module`` fail, as if not installed
    [message] = check_health_config()
    assert (message.id, bool(message.hint)) == (check_id, True)
