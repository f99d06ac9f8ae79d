"""A real Celery worker on RabbitMQ: the message carries the request id to the "received" line and the task's lines.

RabbitMQ is the one on 127.0.0.1:5672 (guest/guest); the test uses a queue of its own and deletes it, since other
runs may share the server. Skipped when RabbitMQ does not answer, or failed with ``PRODKIT_REQUIRE_TOOLS=1``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from django_prodkit.context.ids import reset_request_id, set_request_id
from tests.test_backends_e2e import BROKER_URL, require_service
from tests.test_tasks_celery_e2e import ROOT_WARNING, log_lines, stop

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parent.parent
TASKS = 3


def wait_for_lines(log: Path, worker: subprocess.Popen[bytes], count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        lines = log_lines(log)
        if sum(line["event"] == "task ran" for line in lines) >= count:
            return lines
        if worker.poll() is not None:
            pytest.fail(f"the worker exited with {worker.returncode}:\n{log.read_text()}")
        time.sleep(0.2)
    pytest.fail(f"the worker did not run {count} tasks within 60 s:\n{log.read_text()[-4000:]}")


def test_tasks_sent_over_rabbitmq_carry_their_request_ids(tmp_path: Path) -> None:
    require_service("RabbitMQ", 5672)
    queue = f"prodkit-test-{uuid.uuid4().hex[:12]}"
    log = tmp_path / "worker.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings_celery", "PYTHONPATH": str(ROOT)}
    env.update(PRODKIT_TEST_BROKER=BROKER_URL, PYTHONUNBUFFERED="1")
    env["PYTHONWARNINGS"] = f"{env.get('PYTHONWARNINGS') or 'default'},{ROOT_WARNING}"
    command = [sys.executable, "-m", "celery", "-A", "tests.celery_app", "worker", "--pool=solo", "-Q", queue]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"]
    with log.open("wb") as output:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    sender = Celery("sender", broker=BROKER_URL, set_as_current=False)
    try:
        sent = {}
        for n in range(TASKS):
            token = set_request_id(f"req-rabbit-{n}")
            try:
                sent[f"rabbit-{n}"] = (sender.send_task("tests.record", args=[f"rabbit-{n}"], queue=queue).id, n)
            finally:
                reset_request_id(token)
        lines = wait_for_lines(log, worker, TASKS)
    finally:
        stop(worker, timeout=20)
        with sender.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)
        sender.close()
    ran = {line["label"]: line for line in lines if line["event"] == "task ran"}
    received = {line["task_id"]: line for line in lines if line["logger"] == "celery.worker.strategy"}
    for label, (task_id, n) in sent.items():
        assert (ran[label]["request_id"], ran[label]["task_id"]) == (f"req-rabbit-{n}", task_id)
        assert received[task_id]["request_id"] == f"req-rabbit-{n}"
        assert received[task_id]["event"].startswith("Task tests.record[")
    assert json.dumps(lines).count("guest:guest") == 0
