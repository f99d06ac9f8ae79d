"""Gunicorn configuration for serving the example in production: ``gunicorn -c gunicorn.conf.py example_project.wsgi``.

Every value can be changed through an environment variable, so the same file serves the container, App Runner,
ECS and ``make demo``. The django-prodkit hooks keep request metrics exact across workers and worker restarts
(they prepare ``PROMETHEUS_MULTIPROC_DIR`` before the workers start and retire the files of workers that exit)
and flush the CloudWatch publisher and the OpenTelemetry spans when a worker exits.
"""

from __future__ import annotations

import multiprocessing
import os

# Imported for gunicorn, which looks the hooks up by name in this module.
from django_prodkit.gunicorn import child_exit, on_exit, on_starting, worker_exit  # noqa: F401


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not an integer") from None


wsgi_app = "example_project.wsgi:application"
# All interfaces inside a container (App Runner and ECS route to it); `make demo` binds 127.0.0.1 instead.
bind = [f"{os.environ.get('HOST', '0.0.0.0')}:{_int('PORT', 8080)}"]  # noqa: S104
# Sync workers: the API is short database-bound requests; 2 x cores + 1 is gunicorn's own recommendation.
workers = _int("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1)
threads = _int("GUNICORN_THREADS", 1)
# Recycle workers now and then so a slow leak cannot grow forever; jitter keeps them from restarting together.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 200)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Longer than the load balancer's idle timeout would be better; App Runner's front end and an ALB keep
# connections for 60 s, and a sync worker blocked on an idle keep-alive serves nobody, so keep it short.
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# The access log is django-prodkit's structured `http_request` event (with request id, route and user);
# gunicorn's own would duplicate it.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Trust X-Forwarded-* only from the proxy in front (App Runner/ALB); override with the proxy's addresses.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# The temporary heartbeat files go to memory, not to a container's overlay filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
proc_name = os.environ.get("SERVICE_NAME", "blog-api")
