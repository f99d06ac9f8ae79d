"""Prometheus text on a port of its own, for a process that serves no Django requests (a Celery worker)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric

from django_prodkit.metrics.render import about_families
from django_prodkit.metrics.store import get_store
from django_prodkit.metrics.workers import metrics_mode


class StoreCollector:
    """The store's families (every process's, in multiprocess mode), the start time and the mode, on each scrape."""

    def collect(self) -> Iterator[Metric]:
        store = get_store()
        yield from store.families()
        yield from about_families(store.started_at, *metrics_mode(store.multiprocess))


def start_metrics_server(port: int, addr: str = "127.0.0.1") -> tuple[WSGIServer, threading.Thread]:
    """Serve the metrics as Prometheus text (or OpenMetrics, by ``Accept``) on ``addr:port`` from a daemon thread.

    Anyone who can reach the port can read the metrics: bind to an address only your scraper reaches.
    Returns the server and its thread; ``server.shutdown()`` stops it.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector())
    server, thread = start_http_server(port, addr=addr, registry=registry)
    return server, thread
