"""Real uvicorn and gunicorn servers: per-worker counts never go unnoticed, and a client that leaves is a 499."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.test_metrics_e2e import free_port, read_metrics, request, wait_until_serving
from tests.test_metrics_recycling import worker_pids
from tests.test_tracing_xray import Daemon

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = [sys.executable, "-m", "gunicorn", "tests.wsgi:application"]
UVICORN = [sys.executable, "-m", "uvicorn", "tests.asgi:application", "--host", "127.0.0.1"]
UVICORN_WORKER = [sys.executable, "-m", "gunicorn", "-k", "uvicorn_worker.UvicornWorker", "tests.asgi:application"]
HOOKS = ["-c", "python:django_prodkit.gunicorn"]
WARNING = re.compile(r"^(\d+) WARNING django_prodkit\.metrics The metrics count the requests of this worker only")


class Server:
    def __init__(self, pid: int, port: int, log: Path, directory: Path | None) -> None:
        self.pid, self.port, self.log, self.directory = pid, port, log, directory

    def output(self) -> str:
        return self.log.read_text()


@contextmanager
def serve(
    tmp_path: Path, command: list[str], *, multiproc: bool, env: dict[str, str] | None = None
) -> Iterator[Server]:
    port = free_port()
    log = tmp_path / "server.log"
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings_workers", "PYTHONPATH": str(ROOT), **(env or {})}
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environ.pop("WEB_CONCURRENCY", None)
    directory = tmp_path / "multiproc" if multiproc else None
    if directory is not None:
        environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    bind = ["--port", str(port)] if command[2] == "uvicorn" else ["--bind", f"127.0.0.1:{port}"]
    with log.open("wb") as output:
        process = subprocess.Popen([*command, *bind], cwd=ROOT, env=environ, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(port, process, log)
        yield Server(process.pid, port, log, directory)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def hammer(port: int, count: int) -> None:
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: request(port, "GET", "/api/v1/hello/")[0], range(count)))
    assert statuses == [200] * count


def assert_warned_once_per_worker(server: Server, name: str, workers: int) -> None:
    _status, body = read_metrics(server.port)
    data = json.loads(body)
    assert data["mode"] == "per-worker"
    assert f"{name} runs {workers} workers" in data["warning"]
    assert "-c python:django_prodkit.gunicorn" in data["warning"]
    # Each line is flushed as it is logged; wait for the first.
    deadline = time.monotonic() + 10
    pids: list[str] = []
    while time.monotonic() < deadline:
        pids = [m.group(1) for m in map(WARNING.match, server.output().splitlines()) if m]
        if pids:
            break
        time.sleep(0.1)
    assert pids, server.output()
    assert len(pids) == len(set(pids)) <= workers, pids  # once per worker, not once per request


@pytest.mark.timeout(120)
def test_gunicorn_workers_without_the_hooks_warn_and_say_so(tmp_path: Path) -> None:
    with serve(tmp_path, [*GUNICORN, "--workers", "2"], multiproc=False) as server:
        hammer(server.port, 40)
        assert_warned_once_per_worker(server, "gunicorn", 2)


@pytest.mark.timeout(120)
def test_uvicorn_workers_without_a_directory_warn_and_say_so(tmp_path: Path) -> None:
    with serve(tmp_path, [*UVICORN, "--workers", "2"], multiproc=False) as server:
        hammer(server.port, 40)
        assert_warned_once_per_worker(server, "uvicorn", 2)


@pytest.mark.timeout(120)
def test_one_worker_is_whole_and_quiet(tmp_path: Path) -> None:
    with serve(tmp_path, UVICORN, multiproc=False) as server:
        hammer(server.port, 10)
        data = json.loads(read_metrics(server.port)[1])
        assert (data["mode"], data["warning"], data["request_count"]) == ("single-process", None, 10)
        assert "WARNING" not in server.output()


@pytest.mark.timeout(120)
def test_uvicorn_workers_with_a_directory_count_exactly(tmp_path: Path) -> None:
    with serve(tmp_path, [*UVICORN, "--workers", "2"], multiproc=True) as server:
        hammer(server.port, 60)
        for _ in range(4):  # whichever worker answers, it reads every worker's counts
            data = json.loads(read_metrics(server.port)[1])
            assert (data["mode"], data["request_count"], data["warning"]) == ("multiprocess", 60, None)


@pytest.mark.timeout(120)
def test_gunicorn_with_uvicorn_workers_recycles_and_compacts(tmp_path: Path) -> None:
    command = [*UVICORN_WORKER, *HOOKS, "--workers", "2", "--graceful-timeout", "5"]
    with serve(tmp_path, command, multiproc=True) as server:
        assert server.directory is not None
        for _round in range(8):
            hammer(server.port, 5)
            # Recycled between requests with SIGTERM, as --max-requests would (uvicorn's worker drops the
            # connections it accepted after reaching --max-requests, which would make the count unknowable).
            master = server.pid
            victim = worker_pids(master)[0]
            os.kill(victim, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (victim in worker_pids(master) or len(worker_pids(master)) < 2):
                time.sleep(0.05)
        data = json.loads(read_metrics(server.port)[1])
        assert (data["mode"], data["request_count"]) == ("multiprocess", 40)
        compacted = json.loads((server.directory / "prodkit_compacted").read_text().split("\n", 1)[1])
        assert compacted["counter"]  # recycled workers were folded
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(list(server.directory.glob("prodkit-*.mmap"))) > 4:
            time.sleep(0.1)
        assert len(list(server.directory.glob("prodkit-*.mmap"))) <= 4


def disconnect_mid_view(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /api/v1/async-wait/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        time.sleep(0.5)  # the view is sleeping now


@pytest.mark.timeout(120)
def test_a_client_that_disconnects_is_counted_logged_and_traced_as_499(tmp_path: Path) -> None:
    daemon = Daemon()
    try:
        with serve(tmp_path, UVICORN, multiproc=False, env={"AWS_XRAY_DAEMON_ADDRESS": daemon.address}) as server:
            disconnect_mid_view(server.port)
            disconnect_mid_view(server.port)
            assert request(server.port, "GET", "/api/v1/hello/")[0] == 200
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and server.output().count("ACCESS 499") < 2:
                time.sleep(0.1)
            data = json.loads(read_metrics(server.port)[1])
            assert data["status_codes"] == {"200": 1, "499": 2}
            assert data["top_endpoints"]["GET /api/v1/async-wait/"] == 2
            assert server.output().count("ACCESS 499 /api/v1/async-wait/") == 2
            segments = [s for s in daemon.segments() if s.get("http", {}).get("request", {}).get("url", "")]
            closed = [s for s in segments if s["http"]["response"]["status"] == 499]
            assert len(closed) == 2, segments
            assert all(s["error"] is True for s in closed)
    finally:
        daemon.sock.close()
