"""Months of recycled workers in a minute: gunicorn with ``--max-requests 4``, counts exact, directory bounded."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_metrics_e2e import free_port, read_metrics, request, wait_until_serving

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
MAX_REQUESTS = 4
CLIENTS = 2
#: Set by one tox environment only: the full 500 recycles (about 4 minutes per test on 2 cores, a gunicorn
#: recycle takes about half a second). Elsewhere 25 recycles check the same things.
LONG_RUN = "PRODKIT_LONG_METRICS_TESTS"
RECYCLES = 500 if os.environ.get(LONG_RUN) == "1" else 25
#: Beyond the live workers' two files each: the started marker, the compacted store and its lock.
OTHER_FILES = 3

#: (method, path or None for a random 404 path, expected status, endpoint label, weight).
PLAN = [
    ("GET", "/api/v1/hello/", 200, "/api/v1/hello/", 5),
    ("GET", "/api/v1/items/{slug}/", 200, "/api/v1/items/<slug:slug>/", 3),
    ("GET", None, 404, "<unmatched>", 2),
    ("GET", "/api/v1/boom/", 500, "/api/v1/boom/", 1),
    ("POST", "/api/v1/hello/", 403, "/api/v1/hello/", 1),
]


def jobs(count: int, rng: random.Random) -> tuple[list[tuple[str, str, int]], Counter[tuple[str, str, str]]]:
    planned: list[tuple[str, str, int]] = []
    expected: Counter[tuple[str, str, str]] = Counter()
    weights = [row[4] for row in PLAN]
    for method, path, status, endpoint, _weight in rng.choices(PLAN, weights, k=count):
        concrete = f"/{uuid.UUID(int=rng.getrandbits(128))}/" if path is None else path
        planned.append((method, concrete.format(slug=f"post-{rng.randrange(1000)}"), status))
        expected[(method, endpoint, str(status))] += 1
    return planned, expected


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def start(tmp_path: Path, preload: bool) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    directory = tmp_path / "multiproc"
    log = tmp_path / "gunicorn.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings_server", "PYTHONPATH": str(ROOT)}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    command = [sys.executable, "-m", "gunicorn", "-c", "python:django_prodkit.gunicorn", "tests.wsgi:application"]
    command += ["--workers", str(WORKERS), "--max-requests", str(MAX_REQUESTS), "--bind", f"127.0.0.1:{port}"]
    command += ["--log-level", "warning", "--graceful-timeout", "5"]
    if preload:
        command.append("--preload")
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    wait_until_serving(port, process, log)
    return process, port, directory


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def assert_exact(port: int, expected: Counter[tuple[str, str, str]]) -> None:
    status, body = read_metrics(port)
    assert status == 200
    data = json.loads(body)
    statuses: Counter[str] = Counter()
    endpoints: Counter[str] = Counter()
    for (method, endpoint, code), count in expected.items():
        statuses[code] += count
        endpoints[f"{method} {endpoint}"] += count
    assert data["request_count"] == sum(expected.values())
    assert data["status_codes"] == dict(statuses)
    assert data["top_endpoints"] == dict(endpoints)
    status, body = read_metrics(port, "?format=prometheus")
    counters = {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == "prodkit_http_requests_total"
    }
    assert counters == {key: float(count) for key, count in expected.items()}


def assert_bounded(directory: Path) -> None:
    """Once the master has folded the last recycled worker, only the live workers' files are left."""
    deadline = time.monotonic() + 20
    names = sorted(p.name for p in directory.iterdir())
    # The reads above recycle workers too: give the master the moment it needs to fold the last one.
    while time.monotonic() < deadline and (
        len(names) > 2 * WORKERS + OTHER_FILES or any(n.startswith(".prodkit-compacted-") for n in names)
    ):
        time.sleep(0.1)
        names = sorted(p.name for p in directory.iterdir())
    assert len([n for n in names if n.endswith(".mmap")]) <= 2 * WORKERS, names
    assert len(names) <= 2 * WORKERS + OTHER_FILES, names


@pytest.mark.timeout(900 if RECYCLES > 100 else 120)
@pytest.mark.parametrize("preload", [False, True], ids=["no-preload", "preload"])
def test_hundreds_of_recycled_workers_keep_exact_counts_in_a_bounded_directory(tmp_path: Path, preload: bool) -> None:
    process, port, directory = start(tmp_path, preload)
    try:
        planned, expected = jobs(RECYCLES * MAX_REQUESTS, random.Random(11))

        def send(job: tuple[str, str, int]) -> tuple[int, int]:
            return request(port, job[0], job[1])[0], job[2]

        with ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(send, planned))
        assert [got for got, _ in answers] == [want for _, want in answers]
        assert_exact(port, expected)
        assert_bounded(directory)
        assert_exact(port, expected)
    finally:
        stop(process)


@pytest.mark.timeout(600 if RECYCLES > 100 else 120)
def test_workers_killed_with_sigkill_are_folded_too(tmp_path: Path) -> None:
    process, port, directory = start(tmp_path, preload=True)
    rng = random.Random(12)
    expected: Counter[tuple[str, str, str]] = Counter()
    killed = 0
    try:
        for _round in range(RECYCLES // 4):
            planned, batch = jobs(rng.randrange(1, MAX_REQUESTS), rng)
            for method, path, status in planned:
                assert request(port, method, path)[0] == status
            expected += batch
            # Between requests, so every request sent was answered and counted before the kill.
            pids = worker_pids(process.pid)
            if pids:
                os.kill(rng.choice(pids), signal.SIGKILL)
                killed += 1
        assert killed > RECYCLES // 8
        assert_exact(port, expected)
        assert_bounded(directory)
        assert_exact(port, expected)
        # Workers being born: a file created but not resized, one resized but not written. No 500 (struct.error).
        (directory / "prodkit-counter-999999-1-1.mmap").write_bytes(b"")
        (directory / "prodkit-histogram-999999-1-1.mmap").write_bytes(b"\0" * 65536)
        assert_exact(port, expected)
    finally:
        stop(process)
