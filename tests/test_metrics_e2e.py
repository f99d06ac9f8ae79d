"""Exact counts across gunicorn workers that are recycled while concurrent clients send requests."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.tools import require_tool

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "e2e-token"
METRICS = "/api/v1/metrics/"
WORKERS = 4
MAX_REQUESTS = 30
CLIENTS = 8

#: (method, path or None for a random 404 path, expected status, endpoint label, how many).
PLAN = [
    ("GET", "/api/v1/hello/", 200, "/api/v1/hello/", 70),
    ("GET", "/api/v1/items/{slug}/", 200, "/api/v1/items/<slug:slug>/", 40),
    ("GET", None, 404, "<unmatched>", 40),
    ("GET", "/api/v1/boom/", 500, "/api/v1/boom/", 20),
    ("POST", "/api/v1/hello/", 403, "/api/v1/hello/", 20),
    ("GET", "/api/v1/healthcheck/", 200, "/api/v1/healthcheck/", 20),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def read_metrics(port: int, query: str = "") -> tuple[int, bytes]:
    return request(port, "GET", METRICS + query, {"Authorization": f"Bearer {TOKEN}"})


def wait_until_serving(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gunicorn exited with {server.returncode}:\n{log.read_text()}")
        try:
            if read_metrics(port)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"gunicorn did not serve within 30 s:\n{log.read_text()}")


@pytest.fixture(params=[True, False], ids=["preload", "no-preload"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    port = free_port()
    directory = tmp_path / "multiproc"
    log = tmp_path / "gunicorn.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings_server", "PYTHONPATH": str(ROOT)}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    command = [sys.executable, "-m", "gunicorn", "-c", "python:django_prodkit.gunicorn", "tests.wsgi:application"]
    command += ["--workers", str(WORKERS), "--max-requests", str(MAX_REQUESTS), "--bind", f"127.0.0.1:{port}"]
    command += ["--log-level", "warning", "--graceful-timeout", "5"]
    # With --preload the store exists in the master before on_starting prepares the directory.
    if request.param:
        command.append("--preload")
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(port, process, log)
        yield port, directory
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_counts_are_exact_across_recycled_workers(server: tuple[int, Path]) -> None:
    # Looked up first, so a missing promtool skips (or fails under CI) before anything is asserted.
    promtool = require_tool("promtool")
    port, directory = server
    rng = random.Random(7)
    jobs: list[tuple[str, str, int]] = []
    expected: Counter[tuple[str, str, str]] = Counter()
    for method, path, status, endpoint, times in PLAN:
        for _ in range(times):
            concrete = f"/{uuid.UUID(int=rng.getrandbits(128))}/" if path is None else path
            jobs.append((method, concrete.format(slug=f"post-{rng.randrange(1000)}"), status))
            expected[(method, endpoint, str(status))] += 1
    rng.shuffle(jobs)

    def send(job: tuple[str, str, int]) -> tuple[int, int]:
        status, _body = request(port, job[0], job[1])
        return status, job[2]

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(send, jobs))
    assert [got for got, _ in answers] == [want for _, want in answers]

    status, body = read_metrics(port)
    assert status == 200
    data = json.loads(body)
    total = sum(expected.values())
    assert data["mode"] == "multiprocess"
    assert data["request_count"] == total == len(jobs)
    statuses: Counter[str] = Counter()
    endpoints: Counter[str] = Counter()
    for (method, endpoint, code), count in expected.items():
        statuses[code] += count
        endpoints[f"{method} {endpoint}"] += count
    assert data["status_codes"] == dict(statuses)
    assert data["top_endpoints"] == dict(endpoints)

    status, body = read_metrics(port, "?format=prometheus")
    assert status == 200
    counters: dict[tuple[str, str, str], float] = {}
    histogram_counts: Counter[str] = Counter()
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "prodkit_http_requests_total":
                counters[(labels["method"], labels["route"], labels["status"])] = sample.value
            elif sample.name == "prodkit_http_request_duration_seconds_count":
                histogram_counts[f"{labels['method']} {labels['route']}"] += int(sample.value)
    assert counters == {key: float(count) for key, count in expected.items()}
    assert histogram_counts == endpoints

    check = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=30, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    # Workers were recycled and folded into the compacted totals (their counts kept, their files gone).
    assert (directory / "prodkit_compacted").is_file()
    assert len(list(directory.glob("prodkit-counter-*.mmap"))) <= 2 * WORKERS
