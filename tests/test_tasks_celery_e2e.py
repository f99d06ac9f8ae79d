"""A real redis-server and a real Celery worker (prefork, 2 processes) beside a real gunicorn.

Tasks enqueued from requests log their request's id with ``task_id`` and ``task_name``; the metrics endpoint
of the web server counts the worker's task runs exactly (shared ``PROMETHEUS_MULTIPROC_DIR``), as does the
worker's own Prometheus port; a failing and a retried task are counted as such.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.celery_app import BROKER_ENV, METRICS_PORT_ENV
from tests.test_metrics_e2e import free_port, read_metrics, request, wait_until_serving
from tests.test_tracing_xray import Daemon
from tests.tools import require_tool

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 24
ROOT_WARNING = "ignore:You're running the worker with superuser privileges"
#: How long the worker may take to run everything the test sent.
DEADLINE_SECONDS = 60.0


def stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = require_tool("redis-server")
    port = free_port()
    command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                import socket

                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)


def wait_for_worker(broker: str, worker: subprocess.Popen[bytes], log: Path) -> None:
    from celery import Celery

    app = Celery("probe", broker=broker)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                pytest.fail(f"the worker exited with {worker.returncode}:\n{log.read_text()}")
            if app.control.ping(timeout=0.5):
                return
        pytest.fail(f"the worker did not answer within 60 s:\n{log.read_text()}")
    finally:
        app.close()


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    listener = Daemon()
    yield listener
    listener.sock.close()


def start_web(env: dict[str, str], port: int, log: Path, *options: str) -> subprocess.Popen[bytes]:
    """gunicorn with the hooks and 2 workers on ``port`` (``options`` added), once it serves."""
    command = [sys.executable, "-m", "gunicorn", "-c", "python:django_prodkit.gunicorn", "tests.wsgi:application"]
    command += ["--workers", "2", "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5", *options]
    with log.open("ab") as output:
        web = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(port, web, log)
    except BaseException:
        stop(web)
        raise
    return web


def start_worker(env: dict[str, str], log: Path, *options: str) -> subprocess.Popen[bytes]:
    """A prefork Celery worker with 2 processes on the test's broker (``options`` added), once it answers."""
    command = [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "--pool=prefork"]
    command += ["--concurrency=2", "--without-gossip", "--without-mingle", "--without-heartbeat", *options]
    # With worker_hijack_root_logger = False Celery keeps our handler but still sets the root level from this.
    command += ["--loglevel=INFO"]
    # CI runs as root, which Celery warns about (and warnings are errors in the tests).
    worker_env = {**env, "PYTHONWARNINGS": f"{env.get('PYTHONWARNINGS') or 'default'},{ROOT_WARNING}"}
    with log.open("wb") as output:
        worker = subprocess.Popen(command, cwd=ROOT, env=worker_env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for_worker(env[BROKER_ENV], worker, log)
    except BaseException:
        stop(worker)
        raise
    return worker


def shared_env(directory: Path, broker: str) -> dict[str, str]:
    """The environment of a web server and a worker that share one multiprocess directory and the broker."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings_celery", "PYTHONPATH": str(ROOT)}
    env.update(PROMETHEUS_MULTIPROC_DIR=str(directory), PYTHONUNBUFFERED="1")
    env[BROKER_ENV] = broker
    return env


@pytest.fixture
def stack(redis_url: str, daemon: Daemon, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """gunicorn and a prefork Celery worker sharing one multiprocess directory, on the redis broker, traced."""
    env = shared_env(tmp_path / "multiproc", redis_url)
    # Every request and task is traced to the test's UDP stand-in for the X-Ray daemon.
    env.update(ENABLE_XRAY="true", AWS_XRAY_DAEMON_ADDRESS=daemon.address)
    web_port, worker_port = free_port(), free_port()
    worker_log = tmp_path / "worker.log"
    web = start_web(env, web_port, tmp_path / "gunicorn.log")
    try:
        worker = start_worker({**env, METRICS_PORT_ENV: str(worker_port)}, worker_log)
        try:
            yield {"web_port": web_port, "worker_port": worker_port, "worker_log": worker_log}
        finally:
            stop(worker, timeout=20)
    finally:
        stop(web)


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def task_counts(port: int) -> dict[str, Any]:
    status, body = read_metrics(port)
    assert status == 200
    return dict(json.loads(body)["tasks"])


def wait_for_counts(port: int, expected_runs: int) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        tasks = task_counts(port)
        if sum(task["count"] for task in tasks.values()) >= expected_runs or time.monotonic() > deadline:
            return tasks
        time.sleep(0.2)


def enqueue(port: int, kind: str, label: str, request_id: str) -> dict[str, Any]:
    status, body = request(port, "GET", f"/api/v1/enqueue/{kind}/{label}/", {"X-Request-ID": request_id})
    assert status == 200, body
    return dict(json.loads(body))


def test_tasks_carry_their_requests_ids_and_are_counted_exactly(stack: dict[str, Any]) -> None:
    port = stack["web_port"]
    sent = {f"task-{n}": enqueue(port, "record", f"task-{n}", f"req-{n}-{os.getpid()}") for n in range(REQUESTS)}
    failed = enqueue(port, "fail", "x", "req-fails")
    retried = enqueue(port, "retry", "again", "req-retries")
    fanned = enqueue(port, "fan-out", "parent", "req-fans-out")
    # record x (REQUESTS + the fan-out's child), fail x 1, retry_once x 2 runs, fan_out x 1.
    tasks = wait_for_counts(port, REQUESTS + 1 + 1 + 2 + 1)

    assert tasks["tests.record"]["count"] == REQUESTS + 1
    assert tasks["tests.record"]["succeeded"] == REQUESTS + 1
    assert tasks["tests.record"]["failed"] == tasks["tests.record"]["retried"] == 0
    assert tasks["tests.fail"] == {**tasks["tests.fail"], "count": 1, "failed": 1, "succeeded": 0, "retried": 0}
    assert tasks["tests.retry_once"]["count"] == 2
    assert tasks["tests.retry_once"]["retried"] == 1
    assert tasks["tests.retry_once"]["succeeded"] == 1
    assert tasks["tests.fan_out"]["count"] == 1
    assert tasks["tests.record"]["avg_duration_ms"] > 0
    assert tasks["tests.record"]["p95_ms"] > 0

    lines = log_lines(stack["worker_log"])
    ran = {line["label"]: line for line in lines if line["event"] == "task ran"}
    for label, response in sent.items():
        assert ran[label]["request_id"] == response["request_id"]
        assert ran[label]["task_id"] == response["task_id"]
        assert ran[label]["task_name"] == "tests.record"
    structlog_lines = [line for line in lines if line["event"] == "structlog line in a task"]
    assert {(line["label"], line["request_id"]) for line in structlog_lines} >= {
        (label, response["request_id"]) for label, response in sent.items()
    }
    # A task enqueued by a task carries the original request's id.
    assert ran["parent-child"]["request_id"] == fanned["request_id"] == "req-fans-out"
    # Both attempts of a retried task log the same request id and task id.
    attempts = [line for line in lines if line.get("label") == "again"]
    assert [line["event"] for line in attempts] == ["first attempt, retrying", "retried attempt"]
    assert {(line["request_id"], line["task_id"]) for line in attempts} == {("req-retries", retried["task_id"])}
    # Celery's "received" line, written before the task runs, carries the message's ids.
    received = {line["task_id"]: line for line in lines if line["logger"] == "celery.worker.strategy"}
    for response in sent.values():
        line = received[response["task_id"]]
        assert line["event"].startswith("Task tests.record[")
        assert (line["request_id"], line["task_name"]) == (response["request_id"], "tests.record")
    # Celery's own line about the failure carries the ids too.
    (failure,) = [line for line in lines if line["logger"] == "celery.app.trace" and line.get("level") == "error"]
    assert failure["request_id"] == "req-fails"
    assert failure["task_id"] == failed["task_id"]

    # The worker's own port serves the same counts as Prometheus text.
    status, body = request(stack["worker_port"], "GET", "/metrics")
    assert status == 200
    samples = {
        (sample.labels["task"], sample.labels["outcome"]): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name == "prodkit_tasks_total"
    }
    assert samples == {
        ("tests.record", "succeeded"): REQUESTS + 1,
        ("tests.fail", "failed"): 1,
        ("tests.retry_once", "retried"): 1,
        ("tests.retry_once", "succeeded"): 1,
        ("tests.fan_out", "succeeded"): 1,
    }
    # And the web server's Prometheus output has them beside the request metrics.
    status, body = read_metrics(port, "?format=prometheus")
    assert status == 200
    assert f'prodkit_tasks_total{{outcome="succeeded",task="tests.record"}} {float(REQUESTS + 1)}' in body.decode()


def wait_for_trace(daemon: Daemon, path: str, operation: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The request segments for ``path`` and the task segments of ``operation`` in their trace, once both came.

    Other tests of the module share the daemon, so segments of earlier requests and tasks may arrive first.
    """
    found: list[dict[str, Any]] = []
    webs: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        found += daemon.segments()
        webs = [s for s in found if s.get("http", {}).get("request", {}).get("url", "").endswith(path)]
        traces = {web["trace_id"] for web in webs}
        tasks = [s for s in found if s.get("annotations", {}).get("operation") == operation and s["trace_id"] in traces]
        if webs and tasks:
            break
        time.sleep(0.05)
    return webs, tasks


def test_the_trace_continues_into_the_task(stack: dict[str, Any], daemon: Daemon) -> None:
    response = enqueue(stack["web_port"], "record", "traced", "req-traced")
    webs, tasks = wait_for_trace(daemon, "/traced/", "tests.record")
    assert len(webs) == 1, webs
    assert len(tasks) == 1, tasks
    (web,), (task,) = webs, tasks
    # The task's segment is in the request's trace, a child of the PRODUCER subsegment of the request that sent it.
    assert task["trace_id"] == web["trace_id"]
    (producer,) = [sub for sub in web.get("subsegments", []) if sub["name"] == "send tests.record"]
    assert producer["namespace"] == "remote"
    assert producer["metadata"]["default"]["task.id"] == response["task_id"]
    assert task["parent_id"] == producer["id"]
    assert task["metadata"]["default"]["task.id"] == response["task_id"]
    (ran,) = [
        line for line in log_lines(stack["worker_log"]) if line.get("label") == "traced" and line["event"] == "task ran"
    ]
    assert ran["trace_id"] == web["trace_id"]
    assert ran["span_id"] == task["id"]
    assert ran["request_id"] == "req-traced"
