"""Whether this process is one worker of several, and the warning when its counts are its own only.

Found from the server's own objects, so it works without any setting: a gunicorn worker runs inside its
``Worker.run`` (any worker class, ``uvicorn_worker.UvicornWorker`` too) and knows ``cfg.workers``; a
``uvicorn --workers N`` child runs inside ``subprocess_started(config, ...)`` and ``Server.run``, whose
``Config`` knows ``workers``. Both servers also take ``WEB_CONCURRENCY`` as their default worker count. A Celery
worker says itself (see ``django_prodkit.tasks.celery``): its prefork pool's size, through :func:`register_server`.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from types import FrameType
from typing import Any, NamedTuple

logger = logging.getLogger("django_prodkit.metrics")

WEB_CONCURRENCY = "WEB_CONCURRENCY"
CELERY_PREFORK = "celery prefork"

MULTIPROCESS = "multiprocess"
SINGLE_PROCESS = "single-process"
PER_WORKER = "per-worker"
# How deep to look in each thread's stack: a worker's run loop sits a few dozen frames below a request.
_MAX_DEPTH = 200


class Server(NamedTuple):
    """The server running this process and how many workers it runs."""

    name: str
    workers: int


def _from_object(candidate: Any) -> Server | None:
    gunicorn_workers = sys.modules.get("gunicorn.workers.base")
    if gunicorn_workers is not None and isinstance(candidate, gunicorn_workers.Worker):
        return Server("gunicorn", int(candidate.cfg.workers))
    uvicorn_server = sys.modules.get("uvicorn.server")
    if uvicorn_server is not None and isinstance(candidate, uvicorn_server.Server):
        candidate = candidate.config
    uvicorn_config = sys.modules.get("uvicorn.config")
    if uvicorn_config is not None and isinstance(candidate, uvicorn_config.Config):
        return Server("uvicorn", int(candidate.workers))
    return None


def _from_stack(frame: FrameType | None) -> Server | None:
    depth = 0
    while frame is not None and depth < _MAX_DEPTH:
        local = frame.f_locals
        for name in ("self", "config"):
            found = _from_object(local.get(name))
            if found is not None:
                return found
        frame = frame.f_back
        depth += 1
    return None


_registered: Server | None = None


def register_server(name: str, workers: int) -> None:
    """Say which server runs this process and how many processes count beside it (a Celery worker's pool)."""
    global _registered
    _registered = Server(name, workers)
    detect_server.cache_clear()
    per_worker_warning.cache_clear()


@functools.cache
def detect_server() -> Server | None:
    """The server and its worker count, or ``None`` when no known server runs this process (cached)."""
    if _registered is not None:
        return _registered
    try:
        for frame in sys._current_frames().values():
            found = _from_stack(frame)
            if found is not None:
                return found
    except Exception:
        # A guess that fails must never fail the request it runs in; the environment is the fallback.
        logger.debug("could not inspect the server's objects", exc_info=True)
    raw = os.environ.get(WEB_CONCURRENCY, "")
    if raw.isdigit() and int(raw) > 1:
        return Server(f"a server with {WEB_CONCURRENCY}={raw}", int(raw))
    return None


@functools.cache
def per_worker_warning() -> str | None:
    """What is wrong when several workers count separately (no multiprocess directory), else ``None``."""
    server = detect_server()
    if server is None or server.workers <= 1:
        return None
    if server.name == CELERY_PREFORK:
        return (
            f"The metrics count the task runs of this process only (pid {os.getpid()}): the Celery worker runs "
            f"{server.workers} pool processes and PROMETHEUS_MULTIPROC_DIR is not set. Set PROMETHEUS_MULTIPROC_DIR "
            "in the worker's environment (the web server's directory when both run on one host)."
        )
    return (
        f"The metrics count the requests of this worker only (pid {os.getpid()}): {server.name} runs "
        f"{server.workers} workers and PROMETHEUS_MULTIPROC_DIR is not set. Start gunicorn with "
        "-c python:django_prodkit.gunicorn (or import the django_prodkit.gunicorn hooks in your gunicorn.conf.py); "
        "with uvicorn --workers, set PROMETHEUS_MULTIPROC_DIR in the server's environment."
    )


def metrics_mode(multiprocess: bool) -> tuple[str, str | None]:
    """How the counts are kept (multiprocess, single-process or per-worker) and the warning for per-worker."""
    if multiprocess:
        return MULTIPROCESS, None
    warning = per_worker_warning()
    return (SINGLE_PROCESS, None) if warning is None else (PER_WORKER, warning)


_warned = False


def warn_if_per_worker() -> None:
    """Log the warning once per process, at its first counted request, when its counts are its own only."""
    global _warned
    if _warned:
        return
    _warned = True
    message = per_worker_warning()
    if message is not None:
        logger.warning(message)
