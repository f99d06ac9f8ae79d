"""Management commands: each run gets an id (``command_id``, also the current request id) for its log lines.

Set in ``AppConfig.ready`` when the process runs ``manage.py <command>``, ``django-admin <command>`` or
``python -m django <command>``, so every line of a ``migrate`` or a cron job, and every task it enqueues,
carries it. Commands that serve requests (``runserver``) or run tasks (``db_worker``) are left alone: each request
or task run gets its own id.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

from structlog.contextvars import bind_contextvars, reset_contextvars

from django_prodkit.context.ids import generate_request_id, reset_request_id, set_request_id
from django_prodkit.context.work import reset_work_fields, set_work_fields

#: ``manage.py`` commands that serve requests or run tasks (Django Tasks' workers): each request or task run gets an
#: id of its own instead.
SERVER_COMMANDS = frozenset({"runserver", "runserver_plus", "testserver", "db_worker", "rqworker"})
_MANAGE_SCRIPTS = frozenset({"manage.py", "django-admin", "django-admin.py"})
#: Longest command name used as a log field (argv is whatever the caller typed).
_MAX_NAME_LENGTH = 64


def command_name(argv: list[str] | None = None) -> str | None:
    """The management command this process runs, or ``None`` (a server, a worker, a test runner, no command)."""
    argv = sys.argv if argv is None else argv
    if len(argv) < 2:
        return None
    script = os.path.basename(argv[0])
    # ``python -m django`` runs django/__main__.py; any other package's __main__ (``python -m gunicorn``) is not ours.
    is_django_main = script == "__main__.py" and os.path.basename(os.path.dirname(argv[0])) == "django"
    if script not in _MANAGE_SCRIPTS and not is_django_main:
        return None
    name = argv[1]
    if name.startswith("-") or name in SERVER_COMMANDS:
        return None
    return name[:_MAX_NAME_LENGTH]


def _fields(name: str, command_id: str) -> dict[str, str]:
    return {"command_id": command_id, "command": name}


def start_command(argv: list[str] | None = None) -> str | None:
    """Give this process's command run an id for the rest of the run; return it (``None`` when not a command)."""
    name = command_name(argv)
    if name is None:
        return None
    command_id = generate_request_id()
    # Never reset: the run is the rest of this thread's life.
    set_request_id(command_id)
    set_work_fields(_fields(name, command_id))
    bind_contextvars(request_id=command_id, **_fields(name, command_id))
    return command_id


@contextlib.contextmanager
def command_run(name: str) -> Iterator[str]:
    """Run a block (say a ``call_command`` from a scheduler) with an id of its own, as a command run gets one."""
    command_id = generate_request_id()
    fields = _fields(name[:_MAX_NAME_LENGTH], command_id)
    id_token = set_request_id(command_id)
    fields_token = set_work_fields(fields)
    bound = bind_contextvars(request_id=command_id, **fields)
    try:
        yield command_id
    finally:
        reset_contextvars(**bound)
        reset_work_fields(fields_token)
        reset_request_id(id_token)
