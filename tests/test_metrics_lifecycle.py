"""One lifecycle for every process manager: a web restart beside a running Celery worker, recycled Celery
children and ``uvicorn --workers`` recycling without any hooks, all exact and bounded.

``PRODKIT_LONG_METRICS_TESTS=1`` runs 150 child recycles instead of 16 (the soak; about a minute more).
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from django_prodkit.metrics import compaction
from tests.test_metrics_e2e import free_port, read_metrics, request
from tests.test_metrics_recycling import LONG_RUN, stop
from tests.test_metrics_servers import UVICORN, serve
from tests.test_tasks_celery_e2e import (
    enqueue,
    redis_url,  # noqa: F401 - the fixture
    shared_env,
    start_web,
    start_worker,
    task_counts,
)

pytestmark = pytest.mark.e2e

LONG = os.environ.get(LONG_RUN) == "1"
#: Each task run recycles a Celery child (--max-tasks-per-child 1).
TASK_RUNS = 150 if LONG else 16
ENQUEUE_PATH = "GET /api/v1/enqueue/<slug:kind>/<slug:label>/"


def our_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("prodkit-*.mmap"))


def mode_of(port: int) -> dict[str, float]:
    _status, body = answered(lambda: read_metrics(port, "?format=prometheus"))
    return {
        s.labels["mode"]: s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == "prodkit_metrics_mode"
    }


#: What a client sees when a uvicorn worker past ``--limit-max-requests`` closes a connection it accepted but had
#: not read yet: the request never reached the application, so it was not counted, and it is sent again.
CLOSED_UNREAD = (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)


def answered(send: Callable[[], tuple[int, bytes]]) -> tuple[int, bytes]:
    """``send()``'s answer, sending again (a few times) when the connection was closed before it was read."""
    for _attempt in range(4):
        try:
            return send()
        except CLOSED_UNREAD:
            time.sleep(0.1)
    return send()


def wait_until_folded(port: int, directory: Path, most: int) -> None:
    """Read (a read folds the files of dead processes) until at most ``most`` of our files are left."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert answered(lambda: read_metrics(port))[0] == 200
        if len(our_files(directory)) <= most:
            return
        time.sleep(0.2)


def wait_for_runs(port: int, runs: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and task_counts(port).get("tests.record", {}).get("count", 0) < runs:
        time.sleep(0.2)


@pytest.mark.timeout(600 if LONG else 180)
def test_a_web_restart_beside_recycling_celery_children_loses_nothing(redis_url: str, tmp_path: Path) -> None:  # noqa: F811
    from celery import Celery

    directory = tmp_path / "multiproc"
    env = shared_env(directory, redis_url)
    web_log, worker_log = tmp_path / "gunicorn.log", tmp_path / "worker.log"
    port = free_port()
    # The worker starts first: the web server's on_starting must leave its children's files alone.
    worker = start_worker(env, worker_log, "--max-tasks-per-child=1")
    web = start_web(env, port, web_log, "--max-requests", "5")
    sender = Celery("sender", broker=redis_url)
    sent = 0
    stop_sending = threading.Event()

    def keep_sending() -> None:
        # Tasks keep coming while the web server is down and restarting.
        nonlocal sent
        while not stop_sending.is_set() and sent < TASK_RUNS // 2:
            sender.send_task("tests.record", args=[f"direct-{sent}"])
            sent += 1
            time.sleep(0.05)

    try:
        requests = 0
        for number in range(TASK_RUNS // 4):
            enqueue(port, "record", f"before-{number}", f"req-before-{number}")
            requests += 1
        thread = threading.Thread(target=keep_sending)
        thread.start()
        stop(web)  # a deploy: the web server restarts, the worker keeps running
        web = start_web(env, port, web_log, "--max-requests", "5")
        for number in range(TASK_RUNS - TASK_RUNS // 4 - TASK_RUNS // 2):
            enqueue(port, "record", f"after-{number}", f"req-after-{number}")
            requests += 1
        thread.join(timeout=60)
        total = requests + sent
        assert total == TASK_RUNS
        wait_for_runs(port, total)
        # Counted exactly: every run, before, during and after the restart, whichever child ran it.
        assert task_counts(port)["tests.record"]["succeeded"] == total
        data = json.loads(read_metrics(port)[1])
        assert data["top_endpoints"][ENQUEUE_PATH] == requests
        assert data["mode"] == "multiprocess"
        assert mode_of(port) == {"multiprocess": 1.0}
        # Bounded: the recycled children were folded; what is left is the live processes' files (two each at
        # most: 2 web workers and 2 pool children), whichever read or hook noticed the exits.
        live = 2 + 2
        wait_until_folded(port, directory, 2 * live)
        assert len(our_files(directory)) <= 2 * live, our_files(directory)
        # Listed under the compaction lock: a compaction in flight (a read or a hook of the live processes) has a
        # temporary file there until its rename, and that is not a file left behind.
        with compaction.locked(str(directory), exclusive=False):
            names = {p.name for p in directory.iterdir()}
        assert names - set(our_files(directory)) <= {
            "prodkit_compacted",
            "prodkit_compaction.lock",
            "prodkit_started_at",
        }
        assert task_counts(port)["tests.record"]["succeeded"] == total
    finally:
        stop_sending.set()
        sender.close()
        stop(web)
        stop(worker)


@pytest.mark.timeout(180)
def test_uvicorn_workers_recycled_by_limit_max_requests_stay_exact_and_bounded(tmp_path: Path) -> None:
    command = [*UVICORN, "--workers", "2", "--limit-max-requests", "4"]
    with serve(tmp_path, command, multiproc=True) as server:
        assert server.directory is not None
        sent = 0
        for _ in range(24):
            status, _body = answered(lambda: request(server.port, "GET", "/api/v1/hello/"))
            assert status == 200
            sent += 1
        # Each read is a request too, and excluded from the counts; the workers it reaches recycle as well.
        data = json.loads(answered(lambda: read_metrics(server.port))[1])
        assert (data["mode"], data["request_count"]) == ("multiprocess", sent)
        # No hooks: the workers that replace exited ones, and reads, fold the dead workers' files.
        wait_until_folded(server.port, server.directory, 2 * 2)
        assert compaction.read_compacted(str(server.directory)).values["counter"]  # exited workers were folded
        assert len(our_files(server.directory)) <= 2 * 2, our_files(server.directory)
        assert json.loads(answered(lambda: read_metrics(server.port))[1])["request_count"] == sent
        assert mode_of(server.port) == {"multiprocess": 1.0}
