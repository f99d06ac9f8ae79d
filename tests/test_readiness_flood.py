"""A flood of readiness probes against a real gunicorn costs one run of the checks per reuse interval."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.test_metrics_e2e import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
READINESS = "/api/v1/healthcheck/ready/"
PROBE_LOG = "PRODKIT_TEST_PROBE_LOG"
PROBES = 50


def counted_check() -> None:
    """The readiness check of the server under test: one line per run, slow enough for probes to overlap."""
    with open(os.environ[PROBE_LOG], "a", encoding="utf-8") as log:
        log.write(f"{os.getpid()}\n")
    time.sleep(0.2)


def probe(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        # By IP, as a load balancer probes: HealthCheckMiddleware answers before host validation.
        connection.request("GET", READINESS, headers={"Host": f"10.0.3.17:{port}"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def runs(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[int, Path]]:
    """gunicorn, one worker with 16 threads, stopped by its PID; yields (port, the check's run log)."""
    port = free_port()
    log = tmp_path / "runs.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings_probes",
        PROBE_LOG: str(log),
        "PRODKIT_TEST_REUSE_SECONDS": str(request.param),
    }
    command = [sys.executable, "-m", "gunicorn", "tests.wsgi:application", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", "1", "--threads", "16", "--worker-class", "gthread"]
    output = tmp_path / "gunicorn.log"
    with output.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not start:\n{output.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield port, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("server", [60.0], indirect=True)
def test_concurrent_probes_share_one_run(server: tuple[int, Path]) -> None:
    port, log = server
    with ThreadPoolExecutor(max_workers=PROBES) as pool:
        statuses = list(pool.map(probe, [port] * PROBES))
    assert statuses == [200] * PROBES
    for _ in range(10):
        assert probe(port) == 200
    # 60 probes, one run: without coalescing each would run the check (and open a database connection).
    assert runs(log) == 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("server", [0.0], indirect=True)
def test_without_reuse_each_sequential_probe_runs_the_checks(server: tuple[int, Path]) -> None:
    port, log = server
    for _ in range(5):
        assert probe(port) == 200
    assert runs(log) == 5
