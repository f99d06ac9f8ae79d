"""CloudWatch publishing end to end: gunicorn workers, moto's CloudWatch server, outages and a hanging endpoint."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from io import StringIO
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from django.core.management import call_command
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((Path(__file__).parent / "emf.schema.json").read_text())
NAMESPACE = "ProdkitTests"
REGION = "us-east-1"
ACCOUNT = "123456789012"
#: (path, expected route, status): routes the tests spread their requests over.
TARGETS = [
    ("/api/v1/hello/", "/api/v1/hello/", 200),
    ("/api/v1/items/a-slug/", "/api/v1/items/<slug:slug>/", 200),
    ("/api/v1/does-not-exist/", "<unmatched>", 404),
]
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_url: str) -> str:
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", moto_url)
    return moto_url


@contextlib.contextmanager
def cloudwatch_client(url: str) -> Iterator[Any]:
    client = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    ).client("cloudwatch", endpoint_url=url)
    try:
        yield client
    finally:
        client.close()


class Gunicorn:
    """gunicorn serving tests.wsgi with tests.settings_cloudwatch, stopped by its PID."""

    def __init__(self, tmp: Path, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.stdout_path = tmp / f"gunicorn-{self.port}.out"
        self.stderr_path = tmp / f"gunicorn-{self.port}.err"
        multiproc = tmp / f"prom-{self.port}"
        multiproc.mkdir()
        full_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PRODKIT_TEST_"))},
            **FAKE_AWS,
            # From the aws_env fixture, else a closed local port: never a real AWS endpoint.
            "AWS_ENDPOINT_URL_CLOUDWATCH": os.environ.get("AWS_ENDPOINT_URL_CLOUDWATCH", "http://127.0.0.1:9"),
            "DJANGO_SETTINGS_MODULE": "tests.settings_cloudwatch",
            "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
            "PYTHONPATH": str(ROOT),
            **env,
        }
        command = [
            sys.executable, "-m", "gunicorn", "tests.wsgi:application", "-c", "python:django_prodkit.gunicorn",
            "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--graceful-timeout", "15",
            "--no-control-socket", *args,
        ]  # fmt: skip
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=out, stderr=err)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn exited: {self.stderr_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.1)
        self.stop()
        raise AssertionError("gunicorn did not start")

    def get(self, path: str) -> tuple[int, float]:
        """One request; its status and how long it took in seconds."""
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
                response.read()
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            exc.read()
            exc.close()
            status = exc.code
        return status, time.perf_counter() - start

    def serve(self, count: int, offset: int = 0) -> tuple[dict[tuple[str, str], int], list[float]]:
        """Send ``count`` requests over the targets from 4 clients; the expected count per (route, method)."""
        expected: dict[tuple[str, str], int] = {}
        paths = [TARGETS[(offset + i) % len(TARGETS)] for i in range(count)]
        for _, route, _ in paths:
            expected[(route, "GET")] = expected.get((route, "GET"), 0) + 1
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda target: (target[2], self.get(target[0])), paths))
        assert [status for _, (status, _) in results] == [want for want, _ in results]
        return expected, [seconds for _, (_, seconds) in results]

    def stop(self) -> int:
        """SIGTERM the master (it stops the workers gracefully) and wait for it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Any]:
    servers: list[Gunicorn] = []

    def start(env: dict[str, str], *args: str) -> Gunicorn:
        server = Gunicorn(tmp_path, env, *args)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def published(url: str, service: str, series: list[tuple[str, str]], metric: str = "RequestCount") -> float:
    """GetMetricStatistics Sum over the last hour, summed over the given per-endpoint series."""
    now = dt.datetime.now(dt.timezone.utc)
    total = 0.0
    with cloudwatch_client(url) as client:
        for route, method in series:
            response = client.get_metric_statistics(
                Namespace=NAMESPACE,
                MetricName=metric,
                Dimensions=[
                    {"Name": "Service", "Value": service},
                    {"Name": "Environment", "Value": "test"},
                    {"Name": "Endpoint", "Value": route},
                    {"Name": "Method", "Value": method},
                ],
                StartTime=now - dt.timedelta(hours=1),
                EndTime=now + dt.timedelta(minutes=5),
                Period=3600,
                Statistics=["Sum"],
            )
            total += sum(point["Sum"] for point in response["Datapoints"])
    return total


def service_level_sum(service: str, metric: str = "RequestCount") -> float:
    """The service-only series, read from moto's store: moto's GetMetricStatistics also matches supersets of the
    dimensions asked for (CloudWatch matches exactly), so it cannot isolate this series."""
    from moto.cloudwatch.models import cloudwatch_backends

    wanted = {("Service", service), ("Environment", "test")}
    return sum(
        datum.value
        for datum in cloudwatch_backends[ACCOUNT][REGION].metric_data
        if datum.namespace == NAMESPACE
        and datum.name == metric
        and {(d.name, d.value) for d in datum.dimensions} == wanted
    )


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return bool(predicate())


class FlakyProxy:
    """A TCP proxy in front of moto that refuses (accepts and closes), stalls (accepts, never answers) or forwards."""

    def __init__(self, upstream_port: int, mode: str = "forward") -> None:
        self.upstream_port = upstream_port
        self.mode = mode
        self.seen: dict[str, int] = {"refuse": 0, "stall": 0, "forward": 0}
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            ready, _, _ = select.select([self._listener], [], [], 0.1)
            if not ready:
                continue
            conn, _ = self._listener.accept()
            with self._lock:
                mode = self.mode
                self.seen[mode] += 1
                self._held.append(conn)
            if mode == "refuse":
                self._close(conn)
            elif mode == "forward":
                thread = threading.Thread(target=self._pump, args=(conn,), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _close(self, conn: socket.socket) -> None:
        with self._lock:
            if conn in self._held:
                self._held.remove(conn)
        conn.close()

    def _pump(self, conn: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        try:
            while not self._stopped.is_set():
                ready, _, _ = select.select([conn, upstream], [], [], 0.1)
                for source in ready:
                    data = source.recv(65536)
                    if not data:
                        return
                    (upstream if source is conn else conn).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()
            self._close(conn)

    def set_mode(self, mode: str) -> None:
        with self._lock:
            self.mode = mode
            stalled = list(self._held) if mode != "stall" else []
        # Stalled connections are cut when the outage ends, as a dead network path eventually is.
        for conn in stalled:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stopped.set()
        for thread in self._threads:
            thread.join(5)
        with self._lock:
            held, self._held = self._held, []
        for conn in held:
            conn.close()
        self._listener.close()


def test_api_mode_publishes_every_request_once_when_workers_exit(aws_env: str, gunicorn: Any) -> None:
    # A 60 s interval: nothing is sent while serving, so every count arrives through the exit flush of a worker,
    # and --max-requests recycles workers mid-run (each recycled worker flushes as it goes).
    service = "exit-flush"
    server = gunicorn(
        {"PRODKIT_TEST_CW_SERVICE": service, "PRODKIT_TEST_CW_FLUSH_INTERVAL": "60"}, "--max-requests", "40"
    )
    expected, _ = server.serve(150)
    assert server.stop() == 0
    # gunicorn's own lines are JSON lines on stdout (django_prodkit.gunicorn's logconfig_dict).
    assert server.stdout_path.read_text().count("Booting worker") > 2  # workers were recycled
    assert published(aws_env, service, list(expected)) == 150, server.stderr[-4000:]
    for (route, method), count in expected.items():
        assert published(aws_env, service, [(route, method)]) == count
    assert service_level_sum(service) == 150
    assert published(aws_env, service, [("/api/v1/hello/", "GET")], "Status2xx") == expected[("/api/v1/hello/", "GET")]
    assert published(aws_env, service, [("<unmatched>", "GET")], "Status4xx") == expected[("<unmatched>", "GET")]


def test_api_mode_keeps_the_data_through_an_outage(aws_env: str, gunicorn: Any) -> None:
    service = "outage"
    proxy = FlakyProxy(int(aws_env.rsplit(":", 1)[1]), mode="refuse")
    try:
        server = gunicorn(
            {"PRODKIT_TEST_CW_SERVICE": service, "AWS_ENDPOINT_URL_CLOUDWATCH": f"http://127.0.0.1:{proxy.port}"}
        )
        expected, _ = server.serve(60)

        def failures() -> int:
            return server.stderr.count("CloudWatch publishing failed")

        # Wait for whole flushes to fail (every attempt of them), not just for a connection attempt.
        assert wait_for(lambda: proxy.seen["refuse"] >= 2 and failures() >= 2, 10), "no flush failed while refusing"
        proxy.set_mode("stall")
        failed_before_stall = failures()
        more, _ = server.serve(60, offset=1)
        assert wait_for(lambda: failures() > failed_before_stall, 15), "no flush failed while stalling"
        assert proxy.seen["stall"] >= 1
        assert published(aws_env, service, list(expected)) == 0
        proxy.set_mode("forward")
        for key, count in more.items():
            expected[key] = expected.get(key, 0) + count
        assert wait_for(lambda: published(aws_env, service, list(expected)) >= 120, 20), server.stderr[-3000:]
        assert server.stop() == 0
        assert published(aws_env, service, list(expected)) == 120
        assert service_level_sum(service) == 120
    finally:
        proxy.close()


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def test_a_hanging_cloudwatch_does_not_slow_requests(aws_env: str, gunicorn: Any) -> None:
    hanging = FlakyProxy(0, mode="stall")  # accepts connections and never answers
    try:
        off = gunicorn({"ENABLE_CLOUDWATCH_METRICS": "false"})
        off.serve(30)  # warm up both workers
        _, off_times = off.serve(90)
        off.stop()
        on = gunicorn(
            {
                "PRODKIT_TEST_CW_FLUSH_INTERVAL": "0.5",
                # A call that hangs for 30 s: a request that waited for CloudWatch would take that long.
                "PRODKIT_TEST_CW_API_TIMEOUT": "30",
                "AWS_ENDPOINT_URL_CLOUDWATCH": f"http://127.0.0.1:{hanging.port}",
            },
            "--graceful-timeout",
            "2",
        )
        on.serve(30)
        assert wait_for(lambda: hanging.seen["stall"] >= 1, 10), "no publisher reached the hanging endpoint"
        _, on_times = on.serve(90)
        # Generous: the precise overhead is measured in benchmarks/cloudwatch_latency.py, not asserted here.
        assert median(on_times) < 3 * median(off_times) + 0.05, (median(on_times), median(off_times))
        assert max(on_times) < 10.0
    finally:
        hanging.close()


def validate_emf(document: dict[str, Any]) -> None:
    """The JSON schema plus what a schema cannot say: every referenced member exists with the right type."""
    jsonschema.validate(document, SCHEMA)
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for name in dimension_set:
                assert isinstance(document[name], str)
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]
            assert isinstance(value, (int, float)) or (isinstance(value, list) and len(value) <= 100)
    assert len(json.dumps(document).encode()) < 64 * 1024


def test_emf_mode_documents_from_every_worker_are_valid_and_sum_to_n(tmp_path: Path, gunicorn: Any) -> None:
    server = gunicorn({"PRODKIT_TEST_CW_MODE": "emf", "PRODKIT_TEST_CW_FLUSH_INTERVAL": "0.5"})
    expected, _ = server.serve(150)
    assert server.stop() == 0
    # The views' own log lines share stdout, as in production; CloudWatch extracts only the EMF lines, and each of
    # them must be whole (no interleaving between workers).
    lines = server.stdout_path.read_text().splitlines()
    documents = [json.loads(line) for line in lines if '"_aws"' in line]
    assert documents, server.stderr[-3000:]
    for document in documents:
        validate_emf(document)
    counted: dict[tuple[str, str], int] = {}
    for document in documents:
        if "RequestCount" in document:
            key = (document["Endpoint"], document["Method"])
            counted[key] = counted.get(key, 0) + document["RequestCount"]
    assert counted == expected
    assert sum(len(d["ResponseTime"]) for d in documents if "ResponseTime" in d) == 150
    assert sum(d.get("Status4xx", 0) for d in documents) == expected[("<unmatched>", "GET")]
    assert {d["Service"] for d in documents} == {"cloudwatch-tests"}


def test_dashboard_and_alarms_apply_to_cloudwatch(aws_env: str, settings: Any) -> None:
    settings.PRODKIT = {"SERVICE_NAME": "applied", "CLOUDWATCH": {"NAMESPACE": NAMESPACE}}
    out = StringIO()
    call_command("cloudwatch_dashboard", "--apply", "--region", REGION, "--p95-ms", "250", stdout=out)
    assert "dashboard applied" in out.getvalue()
    with cloudwatch_client(aws_env) as client:
        alarms = {a["AlarmName"]: a for a in client.describe_alarms(AlarmNamePrefix="applied-")["MetricAlarms"]}
        body = json.loads(client.get_dashboard(DashboardName="applied")["DashboardBody"])
    assert set(alarms) == {"applied-error-rate", "applied-p95-response-time", "applied-5xx-per-minute"}
    assert alarms["applied-p95-response-time"]["Threshold"] == 250
    assert alarms["applied-p95-response-time"]["ExtendedStatistic"] == "p95"
    assert alarms["applied-5xx-per-minute"]["Threshold"] == 10
    assert alarms["applied-error-rate"]["Threshold"] == 1
    assert [q["Id"] for q in alarms["applied-error-rate"]["Metrics"]] == ["rate", "m5xx", "requests"]
    assert len(body["widgets"]) == 5
