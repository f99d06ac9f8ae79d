"""Liveness and readiness: the check engine behind the health endpoints.

Every readiness check runs in its own daemon thread and is waited for until the shared deadline, so a hung
dependency fails at ``HEALTH_CHECK_TIMEOUT`` instead of hanging the endpoint. A check still running from an
earlier probe is joined rather than started again, which bounds the threads a hung dependency can pin to one.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.db import connections
from django.utils.module_loading import import_string

from django_prodkit.conf import get_config
from django_prodkit.health.dependencies import (
    CheckFailedError as CheckFailedError,
)
from django_prodkit.health.dependencies import (
    broker_url,
    endpoint_name,
    probe_broker,
    probe_redis,
    probe_storage,
    storage_aliases,
)

logger = logging.getLogger("django_prodkit.health")


#: A query that needs a working connection; SQLite's also reads the schema, so a locked file fails it.
PROBE_SQL: dict[str, str] = {"sqlite": "SELECT count(*) FROM sqlite_master", "oracle": "SELECT 1 FROM DUAL"}
DEFAULT_PROBE_SQL = "SELECT 1"

#: Longest error message put in a response or log line.
MAX_ERROR_LENGTH = 300

CACHE_KEY_PREFIX = "prodkit:health:"


STATUS_OK = "ok"
STATUS_FAIL = "fail"


@dataclass(frozen=True)
class Check:
    """A named readiness check: ``func()`` returns normally to pass and raises to fail."""

    name: str
    func: Callable[[], object]


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check in one probe."""

    name: str
    ok: bool
    duration_ms: float
    error: str | None = None
    error_class: str | None = None


@dataclass(frozen=True)
class ReadinessReport:
    """Every check's result; ``ok`` only when all passed."""

    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return all(result.ok for result in self.results)

    def as_dict(self, *, show_errors: bool = False) -> dict[str, Any]:
        """The JSON body of the readiness endpoint; each failure's message only with ``show_errors``."""
        checks: dict[str, dict[str, Any]] = {}
        for result in self.results:
            entry: dict[str, Any] = {
                "status": STATUS_OK if result.ok else STATUS_FAIL,
                "duration_ms": round(result.duration_ms, 3),
            }
            if not result.ok and show_errors:
                entry["error"] = result.error
            checks[result.name] = entry
        return {
            "status": STATUS_OK if self.ok else STATUS_FAIL,
            "failing": [result.name for result in self.results if not result.ok],
            "checks": checks,
        }


def check_database(alias: str) -> None:
    """Open a fresh connection to ``alias``, run a trivial query, and always close it."""
    connection = connections.create_connection(alias)
    try:
        with connection.cursor() as cursor:
            cursor.execute(PROBE_SQL.get(connection.vendor, DEFAULT_PROBE_SQL))
            cursor.fetchone()
    finally:
        connection.close()
        # Django keeps in-memory SQLite connections open on close(); this one is private, so really close it.
        if connection.connection is not None:
            connection.connection.close()
            connection.connection = None


def check_cache(alias: str) -> None:
    """Set, read back and delete a unique key in the cache ``alias`` with a fresh client, then close it."""
    cache = caches.create_connection(alias)
    if isinstance(cache, _PROVES_NOTHING):
        return  # stores nothing, or only in this process: a read-back proves nothing about the site
    key = CACHE_KEY_PREFIX + uuid.uuid4().hex
    try:
        cache.set(key, key, timeout=30)
        if cache.get(key) != key:
            raise CheckFailedError("the value written could not be read back")
        cache.delete(key)
    finally:
        cache.close()


def _database_aliases(configured: list[str] | None) -> list[str]:
    return list(connections) if configured is None else list(configured)


def _cache_aliases(configured: list[str] | None) -> list[str]:
    if configured is not None:
        return list(configured)
    # A dummy cache stores nothing, a local-memory one only in this process: a probe of either proves nothing.
    return [alias for alias in caches.settings if not _proves_nothing(caches.settings[alias].get("BACKEND", ""))]


_PROVES_NOTHING = (DummyCache, LocMemCache)


def _proves_nothing(backend: str) -> bool:
    try:
        return issubclass(import_string(backend), _PROVES_NOTHING)
    except ImportError:
        return False


def _import_failure(path: str, exc: Exception) -> Callable[[], object]:
    def fail() -> object:
        raise CheckFailedError(f"cannot import {path!r}: {exc}")

    return fail


@lru_cache(maxsize=8)
def resolve_custom_checks(paths: tuple[str, ...]) -> tuple[Check, ...]:
    """Import the dotted paths of ``HEALTH_CHECKS`` once; one that does not import becomes a failing check."""
    resolved: list[Check] = []
    for path in paths:
        try:
            func = import_string(path)
        except ImportError as exc:
            func = _import_failure(path, exc)
        resolved.append(Check(path, func))
    return tuple(resolved)


def configured_checks() -> list[Check]:
    """The readiness checks the current configuration asks for, in report order."""
    config = get_config()
    checks = [
        Check(f"database:{alias}", partial(check_database, alias))
        for alias in _database_aliases(config["HEALTH_CHECK_DATABASES"])
    ]
    checks.extend(
        Check(f"cache:{alias}", partial(check_cache, alias)) for alias in _cache_aliases(config["HEALTH_CHECK_CACHES"])
    )
    timeout = float(config["HEALTH_CHECK_TIMEOUT"])
    checks.extend(
        Check(f"redis:{endpoint_name(url)}", partial(probe_redis, url, timeout))
        for url in config["HEALTH_CHECK_REDIS_URLS"]
    )
    broker = broker_url()
    if broker is not None:
        checks.append(Check(f"broker:{endpoint_name(broker)}", partial(probe_broker, broker, timeout)))
    checks.extend(
        Check(f"storage:{alias}", partial(probe_storage, alias))
        for alias in storage_aliases(config["HEALTH_CHECK_STORAGES"])
    )
    checks.extend(resolve_custom_checks(tuple(config["HEALTH_CHECKS"])))
    return checks


@dataclass
class _Run:
    future: Future[CheckResult]
    thread: threading.Thread
    started: float


_lock = threading.Lock()
_runs: dict[str, _Run] = {}


def _execute(check: Check, future: Future[CheckResult]) -> None:
    start = time.perf_counter()
    try:
        if check.func() is False:
            raise CheckFailedError("the check returned False")
    except BaseException as exc:  # anything escaping would leave the future unset and the check "hung" forever
        message = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
        result = CheckResult(check.name, False, (time.perf_counter() - start) * 1000, message, type(exc).__name__)
    else:
        result = CheckResult(check.name, True, (time.perf_counter() - start) * 1000)
    finally:
        # A custom check may use the ORM or a cache; what it opened belongs to this thread, which is about to end.
        connections.close_all()
        caches.close_all()
    future.set_result(result)


def _start(check: Check) -> _Run:
    with _lock:
        run = _runs.get(check.name)
        if run is not None and not run.future.done():
            return run
        future: Future[CheckResult] = Future()
        thread = threading.Thread(
            target=_execute, args=(check, future), name=f"prodkit-health:{check.name}", daemon=True
        )
        run = _runs[check.name] = _Run(future, thread, time.monotonic())
        thread.start()
        return run


def _timed_out(name: str, run: _Run, timeout: float) -> CheckResult:
    running = time.monotonic() - run.started
    message = f"no answer within {timeout:g} s (running for {running:.1f} s)"
    return CheckResult(name, False, running * 1000, message, "Timeout")


def run_checks(checks: list[Check], timeout: float) -> ReadinessReport:
    """Run ``checks`` concurrently and wait at most ``timeout`` seconds for all of them."""
    runs = [(check.name, _start(check)) for check in checks]
    wait([run.future for _, run in runs], timeout=timeout)
    results = [run.future.result() if run.future.done() else _timed_out(name, run, timeout) for name, run in runs]
    for result in results:
        if not result.ok:
            logger.warning("readiness check %s failed: %s", result.name, result.error)
    return ReadinessReport(results)


def run_readiness_checks() -> ReadinessReport:
    """Run the configured readiness checks with the configured timeout."""
    return run_checks(configured_checks(), float(get_config()["HEALTH_CHECK_TIMEOUT"]))


def wait_for_running_checks(timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for checks still running (e.g. hung ones) to end; ``True`` if all did."""
    deadline = time.monotonic() + timeout
    with _lock:
        threads = [run.thread for run in _runs.values()]
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)
