"""Tasks run in-process (Celery's eager mode, Django Tasks' immediate backend), headers, and the import rules."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from django.test import Client
from django.utils.log import DEFAULT_LOGGING

from django_prodkit.context.work import get_work_fields
from django_prodkit.logging import configure_logging
from django_prodkit.metrics.snapshot import task_summary
from django_prodkit.metrics.store import get_store, reset_store
from django_prodkit.request_id import get_request_id, is_valid_request_id, reset_request_id, set_request_id
from django_prodkit.tasks.commands import command_name, command_run
from django_prodkit.tasks.runs import TaskRun, outgoing_header
from tests.tools import REQUIRE_TOOLS

ROOT = Path(__file__).resolve().parent.parent
ReadLines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_lines() -> Iterator[ReadLines]:
    """``configure_logging``'s JSON lines, as dicts."""
    logging.config.dictConfig(configure_logging(fmt="json", level="INFO"))
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    yield read
    root = logging.getLogger()
    for existing in root.handlers[:]:
        root.removeHandler(existing)
    logging.config.dictConfig(DEFAULT_LOGGING)
    structlog.reset_defaults()


@pytest.fixture
def fresh_store() -> Iterator[None]:
    reset_store()
    yield
    reset_store()


@pytest.fixture
def tasks_client(settings: Any) -> Client:
    settings.ROOT_URLCONF = "tests.urls_tasks"
    return Client()


def tasks() -> dict[str, Any]:
    return task_summary(get_store().families())


@pytest.mark.usefixtures("fresh_store")
def test_an_eager_celery_task_runs_with_its_requests_id(tasks_client: Client, log_lines: ReadLines) -> None:
    response = tasks_client.get("/api/v1/enqueue/record/eager/", HTTP_X_REQUEST_ID="req-eager-1")
    assert response.status_code == 200
    (ran,) = [line for line in log_lines() if line["event"] == "task ran"]
    assert ran["request_id"] == "req-eager-1"
    assert ran["task_id"] == response.json()["task_id"]
    assert ran["task_name"] == "tests.record"
    assert tasks()["tests.record"]["count"] == 1
    # After the task the request's own context is back: no task fields on its access line.
    (access,) = [line for line in log_lines() if line["event"] == "http_request"]
    assert "task_id" not in access
    assert get_work_fields() is None


@pytest.mark.usefixtures("fresh_store")
def test_eager_failures_and_retries_are_counted(tasks_client: Client, log_lines: ReadLines) -> None:
    # An eager task's exception propagates to the caller, as Celery documents for task_eager_propagates.
    from tests import celery_app

    celery_app.app.conf.task_eager_propagates = False
    try:
        assert tasks_client.get("/api/v1/enqueue/fail/x/").status_code == 200
        assert tasks_client.get("/api/v1/enqueue/retry/again/", HTTP_X_REQUEST_ID="req-retry").status_code == 200
    finally:
        celery_app.app.conf.task_eager_propagates = True
    summary = tasks()
    assert summary["tests.fail"]["failed"] == 1
    assert summary["tests.retry_once"] == {**summary["tests.retry_once"], "count": 2, "retried": 1, "succeeded": 1}
    attempts = [line for line in log_lines() if line.get("label") == "again"]
    assert {line["request_id"] for line in attempts} == {"req-retry"}


def test_the_header_carries_the_current_id_or_a_new_one() -> None:
    outside = outgoing_header()
    assert is_valid_request_id(outside["request_id"])
    assert outgoing_header()["request_id"] != outside["request_id"]
    token = set_request_id("req-inside")
    try:
        assert outgoing_header() == {"request_id": "req-inside"}
    finally:
        reset_request_id(token)


@pytest.mark.usefixtures("fresh_store")
@pytest.mark.parametrize("header", [None, "not a dict", {"request_id": "bad id\nforged"}, {"request_id": 7}])
def test_a_run_with_a_missing_or_bad_header_gets_an_id_of_its_own(header: Any) -> None:
    run = TaskRun("celery", "task-1", "tests.record", header)
    try:
        assert run.request_id == get_request_id()
        assert is_valid_request_id(run.request_id)
        assert get_work_fields() == {"task_id": "task-1", "task_name": "tests.record"}
    finally:
        run.finish("succeeded")
    assert get_request_id() is None
    assert get_work_fields() is None
    run.finish("succeeded")
    assert tasks()["tests.record"]["count"] == 1


@pytest.mark.usefixtures("fresh_store")
def test_a_run_keeps_a_valid_id_and_command_id_from_the_header() -> None:
    run = TaskRun("celery", "t", "x" * 500, {"request_id": "req-1", "command_id": "cmd-1", "trace": {"a": 1}})
    try:
        assert get_request_id() == "req-1"
        fields = get_work_fields()
        assert fields is not None
        assert fields["command_id"] == "cmd-1"
        assert len(fields["task_name"]) == 200
    finally:
        run.finish("failed")
    assert tasks()["x" * 200]["failed"] == 1


def require_django_tasks() -> None:
    from django_prodkit.tasks.django_tasks import signals_module

    if signals_module() is None:
        message = "Django 5.2 without the django-tasks backport (tox's django52 envs install it)"
        if os.environ.get(REQUIRE_TOOLS) == "1":
            pytest.fail(f"{message}; {REQUIRE_TOOLS}=1 requires it")
        pytest.skip(message)


@pytest.mark.usefixtures("fresh_store")
def test_django_tasks_immediate_backend(log_lines: ReadLines) -> None:
    require_django_tasks()
    from tests import django_tasks_app

    token = set_request_id("req-django-task")
    try:
        result = django_tasks_app.note.enqueue("hello")
        django_tasks_app.broken.enqueue()
    finally:
        reset_request_id(token)
    lines = log_lines()
    (ran,) = [line for line in lines if line["event"] == "django task ran"]
    assert ran["request_id"] == "req-django-task"
    assert ran["task_id"] == str(result.id)
    assert ran["task_name"] == "tests.django_tasks_app.note"
    enqueued = [line for line in lines if line["event"] == "task enqueued"]
    assert {line["request_id"] for line in enqueued} == {"req-django-task"}
    summary = tasks()
    note = summary["tests.django_tasks_app.note"]
    assert note == {**note, "count": 1, "succeeded": 1}
    assert summary["tests.django_tasks_app.broken"]["failed"] == 1


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["manage.py", "migrate"], "migrate"),
        (["/srv/app/manage.py", "send_digest", "--now"], "send_digest"),
        (["/usr/lib/python3/site-packages/django/__main__.py", "check"], "check"),
        (["django-admin", "runserver"], None),
        (["manage.py", "db_worker"], None),
        (["manage.py"], None),
        (["manage.py", "--help"], None),
        (["gunicorn", "app.wsgi"], None),
        (["/usr/bin/celery", "worker"], None),
    ],
)
def test_command_name(argv: list[str], name: str | None) -> None:
    assert command_name(argv) == name


def test_command_run_gives_a_block_an_id_of_its_own() -> None:
    with command_run("nightly") as command_id:
        assert get_request_id() == command_id
        assert get_work_fields() == {"command_id": command_id, "command": "nightly"}
        assert outgoing_header()["command_id"] == command_id
    assert get_request_id() is None
    assert get_work_fields() is None


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.timeout(120)
def test_a_management_command_run_has_an_id_in_its_lines_and_its_tasks() -> None:
    code = """
import sys
from django.core.management import execute_from_command_line
# What manage.py does: its argv is the process's.
sys.argv = ["manage.py", "shell", "-c", '''
import logging
from tests import celery_app
logging.getLogger("tests.command").warning("from the command")
celery_app.record.delay("from-command")
''']
execute_from_command_line(sys.argv)
"""
    result = run_python(code, DJANGO_SETTINGS_MODULE="tests.settings_celery")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    (own,) = [line for line in lines if line["event"] == "from the command"]
    (task,) = [line for line in lines if line["event"] == "task ran"]
    assert is_valid_request_id(own["command_id"])
    assert own["command"] == "shell"
    assert own["request_id"] == own["command_id"]
    assert task["request_id"] == task["command_id"] == own["command_id"]
    assert task["task_name"] == "tests.record"


CHECK_IMPORTS = """
import sys
{block}
import django
django.setup()
from django.test import Client
Client().get("/api/v1/hello/")
from django_prodkit.tasks import celery as ours
print("celery" in sys.modules and sys.modules["celery"] is not None)
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("block", "settings", "imported"),
    [
        # Installed and on (the default): the integration imports it.
        ("", "tests.settings", True),
        # Installed but turned off: never imported.
        ("", "tests.settings_celery_off", False),
        # Not installed: nothing breaks, nothing is imported.
        ('sys.modules["celery"] = None', "tests.settings", False),
    ],
)
def test_celery_is_imported_only_when_installed_and_wanted(block: str, settings: str, imported: bool) -> None:
    code = CHECK_IMPORTS.format(block=block).replace("from django_prodkit.tasks import celery as ours\n", "")
    result = run_python(code, DJANGO_SETTINGS_MODULE=settings)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(imported)
