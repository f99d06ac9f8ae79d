"""A run never hangs: many short runs against servers that close, reset and stall connections, with CPU load beside.

This is the regression test of the hang in ``test_the_html_report_needs_no_network_and_renders_in_chromium``
(open loop, ``--rate 200``, 4 users x 40, a server closing every 4th keep-alive connection without saying so, on
a loaded machine). Every run checks, on each watchdog tick, that every user is exactly one of idle, connecting or in
flight and that the engine agrees; every run must end with each scheduled request accounted for.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from django_prodkit.loadtest import client as client_module
from django_prodkit.loadtest import engine as engine_module
from django_prodkit.loadtest.config import LoadTestConfig, RequestSpec, parse_url
from django_prodkit.loadtest.engine import Engine
from django_prodkit.loadtest.runner import run_load_test
from tests.loadtest_servers import serving

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]
BURNERS = 2
BURN_SECONDS = 200
RUNS = 12


@pytest.fixture
def cpu_load() -> Iterator[None]:
    """Busy processes beside the runs (bounded in time themselves, and stopped by PID afterwards)."""
    code = f"import time\nend = time.monotonic() + {BURN_SECONDS}\nwhile time.monotonic() < end: pass"
    burners = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(BURNERS)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def checked_run(config: LoadTestConfig, use_uvloop: bool) -> tuple[int, int]:
    """Run with the invariant checked on every tick; return (requests accounted for, ticks checked)."""
    ticks = 0

    def count(engine: Engine) -> None:
        nonlocal ticks
        ticks += 1

    result = run_load_test(config, use_uvloop=use_uvloop, on_tick=count, check_invariant=True)
    assert result.stopped is None, result.stopped
    return result.results.total.requests, ticks


@pytest.mark.parametrize("use_uvloop", [True, False])
@pytest.mark.usefixtures("cpu_load")
def test_open_loop_against_a_server_closing_every_4th_connection_never_hangs(use_uvloop: bool) -> None:
    specs = (RequestSpec("/a"), RequestSpec("/b"))
    with serving("close", close_every=4) as server:
        for _ in range(RUNS):
            config = LoadTestConfig(target=parse_url(server.url), users=4, requests=40, rate=200, specs=specs)
            requests, _ = checked_run(config, use_uvloop)
            assert requests == 160


@pytest.mark.parametrize("use_uvloop", [True, False])
@pytest.mark.usefixtures("cpu_load")
def test_runs_against_a_server_that_closes_resets_and_stalls_always_end(use_uvloop: bool) -> None:
    with serving("chaos", delay=1.0) as server:
        for run in range(RUNS):
            rate = 300.0 if run % 2 else None
            config = LoadTestConfig(target=parse_url(server.url), users=5, requests=12, rate=rate, timeout=0.3)
            requests, ticks = checked_run(config, use_uvloop)
            # Every request ends as a response or an error (a reset, a close, a timeout): none is lost.
            assert requests == 60
            assert ticks > 0


def test_the_run_deadline_ends_a_run_whose_requests_never_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """The safety net: with the per-request timeout disabled, the run-level deadline still ends the run."""
    monkeypatch.setattr(engine_module, "RUN_GRACE", 0.5)
    monkeypatch.setattr(client_module.User, "expire", lambda self, now: None)
    with serving("hang") as server:
        config = LoadTestConfig(target=parse_url(server.url), users=2, requests=3, timeout=0.2)
        result = run_load_test(config)
    assert result.stopped == "deadline"
    # Nothing finished; the report still comes, and says so.
    assert result.results.total.requests == 0


@pytest.mark.parametrize("use_uvloop", [True, False])
@pytest.mark.parametrize("error", [RuntimeError("closed Transport handle and unset waiter"), asyncio.CancelledError()])
def test_a_connect_attempt_failing_with_any_exception_ends_its_request(
    monkeypatch: pytest.MonkeyPatch, use_uvloop: bool, error: BaseException
) -> None:
    """The hang's root: a connect attempt that ended with anything but OSError (uvloop reports a connect cancelled by
    libuv as CancelledError, a transport closed before connection_made as RuntimeError) left its user "connecting"
    for ever, and the watchdog skipped connecting users, so the run waited for it without end."""
    connect = Engine.connect
    attempts = 0

    async def flaky(self: Engine, factory: Any) -> Any:
        nonlocal attempts
        attempts += 1
        # The first connection is the reachability check; then every third attempt fails.
        if attempts > 1 and attempts % 3 == 0:
            raise error
        return await connect(self, factory)

    monkeypatch.setattr(Engine, "connect", flaky)
    with serving("close-header", close_every=1) as server:
        config = LoadTestConfig(target=parse_url(server.url), users=3, requests=10, rate=400)
        requests, _ = checked_run(config, use_uvloop)
        seen = server.count
    assert requests == 30
    assert seen < 30
