"""Readiness probes of what a site depends on besides its databases and caches: Redis, the Celery broker, storage.

Each opens its own short-lived client with timeouts no longer than the probe's, and always closes it, like the
database probe. None of them is ever given a credential to print: a failure names the host, never the URL.
"""

from __future__ import annotations

import importlib
import os
import urllib.parse
import uuid
from typing import Any

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages

from django_prodkit.conf import get_config

#: The name a remote storage is asked about: a read (``exists``) proves the service answers and the credentials
#: work, and costs no write per probe.
STORAGE_PROBE_NAME = "prodkit-health-probe"


class CheckFailedError(Exception):
    """Raised by (or for) a readiness check that did not pass."""


def endpoint_name(url: str) -> str:
    """``scheme://host:port/path`` of ``url`` without its user and password, to name a probe or a failure."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable URL>"
    return f"{parts.scheme}://{host}{port}{parts.path}"


def probe_redis(url: str, timeout: float) -> None:
    """PING the Redis server at ``url`` with a fresh connection and ``timeout`` s to connect and answer."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout, retry=None)
    try:
        if client.ping() is not True:
            raise CheckFailedError(f"{endpoint_name(url)} did not answer PING")
    except redis.RedisError as exc:
        # redis-py's messages name the host and port, never the password; keep only the class and the text.
        raise CheckFailedError(f"{endpoint_name(url)}: {type(exc).__name__}: {exc}") from None
    finally:
        client.close()


def broker_url() -> str | None:
    """The broker to probe: ``HEALTH_CHECK_BROKER_URL``, else ``CELERY_BROKER_URL``; ``None`` (or "") is none."""
    configured = get_config()["HEALTH_CHECK_BROKER_URL"]
    url = configured if configured is not None else getattr(settings, "CELERY_BROKER_URL", None)
    return url if isinstance(url, str) and url else None


def probe_broker(url: str, timeout: float) -> None:
    """Connect to the message broker at ``url`` with kombu (no retries, ``timeout`` s) and open a channel."""
    kombu: Any = importlib.import_module("kombu")  # untyped
    options: dict[str, Any] = {"socket_connect_timeout": timeout, "socket_timeout": timeout, "max_retries": 0}
    connection = kombu.Connection(url, connect_timeout=timeout, transport_options=options)
    try:
        connection.ensure_connection(max_retries=0, timeout=timeout)
        connection.default_channel  # noqa: B018 -- opening the channel is the probe (Redis pings, AMQP opens one)
    except Exception as exc:
        raise CheckFailedError(f"{endpoint_name(url)}: {type(exc).__name__}: {exc}") from None
    finally:
        connection.release()


def _writable_directory(path: str) -> bool:
    # FileSystemStorage creates its directory on the first save, so a missing one is fine if it can be made.
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            return False
        path = parent
    return os.path.isdir(path) and os.access(path, os.W_OK | os.X_OK)


def storage_aliases(configured: list[str] | None) -> list[str]:
    """``configured``, or by default the ``default`` storage unless it is the file system at an unset MEDIA_ROOT."""
    if configured is not None:
        return list(configured)
    backends: dict[str, Any] = storages.backends  # typed as the storage in django-stubs
    backend = backends.get("default", {}).get("BACKEND", "")
    if backend == "django.core.files.storage.FileSystemStorage" and not settings.MEDIA_ROOT:
        return []  # nothing was set up for files: the current directory says nothing about the site
    return ["default"]


def probe_storage(alias: str) -> None:
    """A fresh instance of the storage ``alias``: a local directory must be writable, a remote one must answer."""
    backends: dict[str, Any] = storages.backends
    storage = storages.create_storage(backends[alias])
    if isinstance(storage, FileSystemStorage):
        if not _writable_directory(str(storage.location)):
            raise CheckFailedError(f"the directory of storage {alias!r} cannot be written to")
        return
    storage.exists(f"{STORAGE_PROBE_NAME}-{uuid.uuid4().hex}")
