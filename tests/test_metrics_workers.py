"""Finding the server's worker count from its own objects (the real servers are in test_metrics_servers.py)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from django_prodkit.metrics import workers


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    workers.detect_server.cache_clear()
    workers.per_worker_warning.cache_clear()
    yield
    workers.detect_server.cache_clear()
    workers.per_worker_warning.cache_clear()


def test_a_gunicorn_worker_is_found_with_its_configured_count() -> None:
    from gunicorn.config import Config
    from gunicorn.workers.sync import SyncWorker

    config = Config()
    config.set("workers", 3)
    worker = SyncWorker(0, 1, [], None, 30, config, logging.getLogger("test"))
    try:
        assert workers._from_object(worker) == workers.Server("gunicorn", 3)
    finally:
        worker.tmp.close()


def test_a_uvicorn_config_or_server_is_found() -> None:
    from uvicorn import Config, Server

    config = Config("tests.asgi:application", workers=4)
    assert workers._from_object(config) == workers.Server("uvicorn", 4)
    assert workers._from_object(Server(config)) == workers.Server("uvicorn", 4)
    assert workers._from_object(object()) is None


def test_the_stack_is_searched_for_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    from uvicorn import Config

    def run(config: Config) -> workers.Server | None:
        return workers._from_stack(sys._getframe())

    assert run(Config("tests.asgi:application", workers=2)) == workers.Server("uvicorn", 2)
    monkeypatch.delenv(workers.WEB_CONCURRENCY, raising=False)
    assert workers.detect_server() is None
    assert workers.per_worker_warning() is None


def test_web_concurrency_is_the_fallback(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(workers.WEB_CONCURRENCY, "3")
    monkeypatch.setattr(workers, "_warned", False)
    assert workers.detect_server() == workers.Server("a server with WEB_CONCURRENCY=3", 3)
    with caplog.at_level(logging.WARNING, "django_prodkit.metrics"):
        workers.warn_if_per_worker()
        workers.warn_if_per_worker()
    assert len(caplog.records) == 1
    assert "-c python:django_prodkit.gunicorn" in caplog.records[0].getMessage()
    monkeypatch.setenv(workers.WEB_CONCURRENCY, "1")
    workers.detect_server.cache_clear()
    workers.per_worker_warning.cache_clear()
    assert workers.per_worker_warning() is None


def test_an_object_that_fails_inspection_never_fails_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    import gunicorn.workers.base  # noqa: F401 - so the inspection asks isinstance() of a gunicorn Worker

    class Hostile:
        @property
        def __class__(self) -> type:  # type: ignore[override]
            raise RuntimeError("inspected")

    def run(self: object) -> workers.Server | None:
        return workers.detect_server()

    monkeypatch.setenv(workers.WEB_CONCURRENCY, "2")
    assert run(Hostile()) == workers.Server("a server with WEB_CONCURRENCY=2", 2)


class WorkController:
    """What ``worker_init`` sends: the worker, with its pool class (a name until resolved) and its size."""

    def __init__(self, pool_cls: str, concurrency: int) -> None:
        self.pool_cls, self.concurrency = pool_cls, concurrency


def test_a_celery_prefork_pool_is_per_worker_and_prometheus_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from celery import signals
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from django_prodkit.metrics.server import StoreCollector
    from django_prodkit.tasks import celery

    monkeypatch.setattr(workers, "_registered", None)
    celery.connect()  # idempotent: AppConfig.ready connected it already
    signals.worker_init.send(sender=WorkController("solo", 1))
    assert workers.metrics_mode(multiprocess=False) == (workers.SINGLE_PROCESS, None)
    signals.worker_init.send(sender=WorkController("celery.concurrency.prefork:TaskPool", 3))
    mode, warning = workers.metrics_mode(multiprocess=False)
    assert mode == workers.PER_WORKER
    assert warning is not None
    assert "the Celery worker runs 3 pool processes" in warning
    assert workers.metrics_mode(multiprocess=True) == (workers.MULTIPROCESS, None)
    # The worker's own Prometheus port says it too, with the JSON's warning as the help text.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector())
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    family = families["prodkit_metrics_mode"]
    assert [(s.labels, s.value) for s in family.samples] == [({"mode": "per-worker"}, 1.0)]
    assert family.documentation == warning


def test_celery_pool_children_fold_themselves_on_the_way_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, sleepers: Any
) -> None:
    """``worker_process_init`` folds the children that died before; ``worker_process_shutdown`` a child's own files."""
    from celery import signals
    from prometheus_client.mmap_dict import mmap_key

    from django_prodkit.metrics import store as store_module
    from django_prodkit.metrics.merge import merge_directory
    from django_prodkit.metrics.snapshot import task_summary
    from django_prodkit.tasks import celery
    from tests.test_metrics_store import worker_path, write_worker_file

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(store_module, "_store", None)
    celery.connect()  # idempotent: AppConfig.ready connected it already
    key = mmap_key("prodkit_tasks", "prodkit_tasks_total", ["task", "outcome"], ["t", "succeeded"], "h")
    write_worker_file(tmp_path, "counter", 1, {key: 2.0})  # a child that was killed
    (sibling,) = sleepers.start(1)
    write_worker_file(tmp_path, "counter", sibling, {key: 1.0})  # a child that runs
    signals.worker_process_init.send(sender="celery@test")
    assert not worker_path(tmp_path, "counter", 1).exists()
    store = store_module.get_store()
    assert store.files is not None
    try:
        store.observe_task("t", "succeeded", 0.1)
        assert worker_path(tmp_path, "counter", store.files.writer.name).exists()
        signals.worker_process_shutdown.send(sender="celery@test", pid=0, exitcode=0)
        assert not worker_path(tmp_path, "counter", store.files.writer.name).exists()
        assert worker_path(tmp_path, "counter", sibling).exists()  # never a live sibling's
        assert task_summary(merge_directory(str(tmp_path)))["t"]["succeeded"] == 4
    finally:
        store.files.close()
