"""The Celery app of the task tests: a few tasks that log, fail, retry and enqueue, on the broker the test gives."""

from __future__ import annotations

import logging
import os
from typing import Any

import django
import structlog
from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings_celery")
django.setup()

from django_prodkit.metrics.server import start_metrics_server  # noqa: E402

#: The broker URL the tests pass to the web server and the worker; eager in-process tests need none.
BROKER_ENV = "PRODKIT_TEST_BROKER"

app = Celery("tests")
app.conf.update(
    broker_url=os.environ.get(BROKER_ENV, "memory://"),
    # Our LOGGING (configure_logging) stays in charge of the worker's output.
    worker_hijack_root_logger=False,
    worker_redirect_stdouts=False,
    task_always_eager=BROKER_ENV not in os.environ,
    broker_connection_retry_on_startup=True,
)

logger = logging.getLogger("tests.tasks")
slog = structlog.get_logger("tests.tasks")


@app.task(name="tests.record")
def record(label: str) -> str:
    logger.info("task ran", extra={"label": label})
    slog.info("structlog line in a task", label=label)
    return label


@app.task(name="tests.fail")
def fail() -> None:
    raise ValueError("this task always fails")


@app.task(name="tests.retry_once", bind=True, max_retries=3)
def retry_once(self: Any, label: str) -> str:
    if self.request.retries == 0:
        logger.info("first attempt, retrying", extra={"label": label})
        raise self.retry(countdown=0)
    logger.info("retried attempt", extra={"label": label, "attempt": self.request.retries})
    return label


@app.task(name="tests.fan_out")
def fan_out(label: str) -> None:
    logger.info("fanning out", extra={"label": label})
    record.delay(f"{label}-child")


#: When set, the worker serves Prometheus text on this port (the "worker in its own container" setup).
METRICS_PORT_ENV = "PRODKIT_TEST_METRICS_PORT"


@signals.worker_ready.connect
def serve_metrics(**kwargs: Any) -> None:
    port = os.environ.get(METRICS_PORT_ENV)
    if port:
        start_metrics_server(int(port))
