"""The metrics over OTLP end to end: gunicorn with 2 workers recycled every 4 requests, a receiver decoding protobuf.

Every worker runs an export thread; only the holder of the export lock sends, and each recycled holder hands
over to another worker. The receiver must see the server's exact totals: one series per route, one instance,
never a worker's share and never a count twice.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.otlp_receiver import ReceivedExport, Receiver
from tests.test_metrics_e2e import free_port, request, wait_until_serving
from tests.test_metrics_recycling import MAX_REQUESTS, WORKERS, jobs, stop

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = "prodkit.http.server.requests"
DURATION = "http.server.request.duration"
INTERVAL_MS = 300
OUTAGE_WARNING = "Could not export metrics to"

SETTINGS = """
from tests.settings_server import *
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "formatters": {"pid": {"format": "%(process)d %(message)s"}},
           "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "pid"}},
           "loggers": {"django_prodkit.metrics": {"handlers": ["stderr"], "level": "WARNING"}}}
"""

Key = tuple[str, str, int]


@contextmanager
def server(tmp_path: Path, endpoint: str, temporality: str) -> Iterator[tuple[int, Path]]:
    (tmp_path / "otlp_e2e_settings.py").write_text(SETTINGS)
    port = free_port()
    log = tmp_path / "gunicorn.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "otlp_e2e_settings", "PYTHONPATH": f"{tmp_path}:{ROOT}"}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "multiproc")
    env["OTEL_METRICS_EXPORTER"] = "otlp"
    env["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"] = endpoint
    env["OTEL_METRIC_EXPORT_INTERVAL"] = str(INTERVAL_MS)
    env["OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"] = "2"
    env["OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"] = temporality
    command = [sys.executable, "-m", "gunicorn", "-c", "python:django_prodkit.gunicorn", "tests.wsgi:application"]
    command += ["--workers", str(WORKERS), "--max-requests", str(MAX_REQUESTS), "--bind", f"127.0.0.1:{port}"]
    command += ["--log-level", "warning", "--graceful-timeout", "5"]
    # The master imports the application once; recycled workers start in a fork's time.
    command.append("--preload")
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(port, process, log)
        yield port, log
    finally:
        stop(process)


def send(port: int, count: int, seed: int) -> Counter[Key]:
    planned, expected = jobs(count, random.Random(seed))
    for method, path, status in planned:
        assert request(port, method, path)[0] == status
    # The kit's labels as OpenTelemetry attributes: an unmatched request has no http.route.
    return Counter(
        {(m, "" if route == "<unmatched>" else route, int(code)): n for (m, route, code), n in expected.items()}
    )


def counts(export: ReceivedExport) -> Counter[Key]:
    found: Counter[Key] = Counter()
    for point in export.metrics[REQUESTS].points if REQUESTS in export.metrics else []:
        attributes = point.attributes
        key = (
            attributes["http.request.method"],
            attributes.get("http.route", ""),
            attributes["http.response.status_code"],
        )
        assert key not in found, f"{key} twice in one export"
        found[key] = int(point.value or 0)
    return found


def wait_for(receiver: Receiver, done: object, timeout: float = 30.0) -> list[ReceivedExport]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        exports = receiver.wait_for_exports(1, timeout=1)
        if exports and done(exports):  # type: ignore[operator]
            return exports
        time.sleep(INTERVAL_MS / 1000)
    return receiver.wait_for_exports(0)


def delta_total(exports: list[ReceivedExport]) -> Counter[Key]:
    total: Counter[Key] = Counter()
    for export in exports:
        total.update(counts(export))
    return total


def test_cumulative_counts_are_exact_across_recycled_workers(tmp_path: Path) -> None:
    receiver = Receiver()
    try:
        with server(tmp_path, receiver.metrics_url, "cumulative") as (port, _log):
            expected = send(port, 6 * MAX_REQUESTS, seed=21)
            exports = wait_for(receiver, lambda got: counts(got[-1]) == expected)
            assert counts(exports[-1]) == expected
            reached = len(exports)
            # Two more exports after the traffic stopped: the same totals, not twice the totals.
            exports = receiver.wait_for_exports(reached + 2, timeout=20)
            assert [counts(e) for e in exports[reached - 1 :]] == [expected] * (len(exports) - reached + 1)
            assert len(exports) >= reached + 2
            assert len({e.resource["service.instance.id"] for e in exports}) == 1
            starts = {p.start_time_unix_nano for e in exports for p in e.metrics[REQUESTS].points}
            assert len(starts) == 1
            durations = exports[-1].metrics[DURATION]
            assert durations.temporality == "cumulative"
            assert sum(p.count or 0 for p in durations.points) == sum(expected.values())
    finally:
        receiver.close()


@pytest.mark.parametrize("temporality", ["cumulative", "delta"])
def test_a_collector_down_then_up_receives_the_right_totals(tmp_path: Path, temporality: str) -> None:
    collector_port = free_port()
    endpoint = f"http://127.0.0.1:{collector_port}/v1/metrics"
    receivers: list[Receiver] = []
    try:
        with server(tmp_path, endpoint, temporality) as (port, log):
            expected = send(port, 3 * MAX_REQUESTS, seed=22)
            # Exports fail while the workers recycle and hand the export lock over.
            deadline = time.monotonic() + 30
            while OUTAGE_WARNING not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(2 * INTERVAL_MS / 1000)
            receiver = Receiver(port=collector_port)
            receivers.append(receiver)
            expected += send(port, 3 * MAX_REQUESTS, seed=23)
            if temporality == "cumulative":
                exports = wait_for(receiver, lambda got: counts(got[-1]) == expected)
                assert counts(exports[-1]) == expected
            else:
                exports = wait_for(receiver, lambda got: delta_total(got) == expected)
                assert delta_total(exports) == expected
                time.sleep(3 * INTERVAL_MS / 1000)
                assert delta_total(receiver.wait_for_exports(0)) == expected  # nothing counted twice
                assert {e.metrics[REQUESTS].temporality for e in exports if REQUESTS in e.metrics} == {"delta"}
            assert len({e.resource["service.instance.id"] for e in receiver.wait_for_exports(0)}) == 1
    finally:
        for receiver in receivers:
            receiver.close()
    # One warning for the outage, however many workers held the export lock during it.
    assert log.read_text().count(OUTAGE_WARNING) == 1, log.read_text()
