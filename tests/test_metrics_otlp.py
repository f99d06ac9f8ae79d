"""The metrics over OTLP/HTTP in one process: encoding, temporality, outages, SigV4, settings and checks.

Every export goes through a real socket to ``tests.otlp_receiver.Receiver``, which decodes the protobuf.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials
from django.core.checks import run_checks
from django.test import Client

from django_prodkit import metrics
from django_prodkit.conf import get_config
from django_prodkit.metrics import otlp
from django_prodkit.metrics.otlp.config import resolve
from django_prodkit.metrics.otlp.exporter import MetricsExporter, build_exporter
from django_prodkit.metrics.store import get_store, reset_store
from tests.otlp_receiver import ReceivedExport, Receiver
from tests.test_tracing_otel_e2e import free_port

assert metrics  # the package under test

DURATION = "http.server.request.duration"
REQUESTS = "prodkit.http.server.requests"
CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")


@pytest.fixture(autouse=True)
def _metrics(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    settings.MIDDLEWARE = [
        "django_prodkit.middleware.RequestIDMiddleware",
        "django_prodkit.middleware.MetricsMiddleware",
        *settings.MIDDLEWARE[1:],
    ]
    settings.PRODKIT = {"SERVICE_NAME": "blog", "OTLP_METRICS": {"ENABLED": True}}
    for name in (
        "OTEL_SERVICE_NAME",
        "OTEL_RESOURCE_ATTRIBUTES",
        "OTEL_METRICS_EXPORTER",
        "OTEL_EXPORTER_OTLP_HEADERS",
    ):
        monkeypatch.delenv(name, raising=False)
    reset_store()
    yield
    otlp.shutdown()
    reset_store()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def exporter_to(url: str, settings: Any, **section: Any) -> MetricsExporter:
    settings.PRODKIT = {"SERVICE_NAME": "blog", "OTLP_METRICS": {"ENABLED": True, "ENDPOINT": url, **section}}
    return build_exporter(resolve(get_config()), get_store())


def serve(count: int, path: str = "/api/v1/hello/") -> None:
    client = Client(raise_request_exception=False)
    for _ in range(count):
        client.get(path)


def counts(export: ReceivedExport) -> dict[tuple[str, str, int], float]:
    return {
        (
            p.attributes["http.request.method"],
            p.attributes.get("http.route", ""),
            p.attributes["http.response.status_code"],
        ): p.value
        for p in export.metrics[REQUESTS].points
    }


def test_cumulative_export_follows_the_http_semantic_conventions(receiver: Receiver, settings: Any) -> None:
    serve(3)
    serve(2, "/api/v1/boom/")
    serve(1, "/no-such-page/")
    exporter = exporter_to(receiver.metrics_url, settings)
    assert exporter.export_once()
    (export,) = receiver.wait_for_exports(1)
    assert export.scopes == ["django_prodkit"]
    assert export.resource["service.name"] == "blog"
    assert export.resource["service.instance.id"]
    assert counts(export) == {("GET", "/api/v1/hello/", 200): 3, ("GET", "/api/v1/boom/", 500): 2, ("GET", "", 404): 1}
    requests = export.metrics[REQUESTS]
    assert (requests.kind, requests.temporality, requests.monotonic, requests.unit) == (
        "sum",
        "cumulative",
        True,
        "{request}",
    )
    duration = export.metrics[DURATION]
    assert (duration.kind, duration.temporality, duration.unit) == ("histogram", "cumulative", "s")
    hello = next(p for p in duration.points if p.attributes.get("http.route") == "/api/v1/hello/")
    assert hello.attributes == {"http.request.method": "GET", "http.route": "/api/v1/hello/"}
    assert hello.count == 3
    assert sum(hello.bucket_counts) == 3
    assert hello.explicit_bounds == list(get_store().buckets)
    assert len(hello.bucket_counts) == len(hello.explicit_bounds) + 1
    assert not hello.has_min_max  # the store has none; nothing is made up
    # The unmatched request has no http.route, as the conventions say.
    assert any("http.route" not in p.attributes for p in duration.points)
    assert {p.start_time_unix_nano for p in requests.points} == {int(get_store().started_at * 1e9)}


def test_two_cumulative_exports_carry_the_totals_once(receiver: Receiver, settings: Any) -> None:
    exporter = exporter_to(receiver.metrics_url, settings)
    serve(4)
    exporter.export_once()
    serve(3)
    exporter.export_once()
    first, second = receiver.wait_for_exports(2)
    assert counts(first) == {("GET", "/api/v1/hello/", 200): 4}
    assert counts(second) == {("GET", "/api/v1/hello/", 200): 7}
    assert first.resource["service.instance.id"] == second.resource["service.instance.id"]
    assert [len(e.metrics[REQUESTS].points) for e in (first, second)] == [1, 1]


def test_delta_exports_sum_to_the_requests(receiver: Receiver, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta")
    exporter = exporter_to(receiver.metrics_url, settings)
    serve(4)
    exporter.export_once()
    exporter.export_once()  # nothing new: nothing sent
    serve(3)
    exporter.export_once()
    first, second = receiver.wait_for_exports(2)
    assert len(receiver.exports) == 2
    assert counts(first) == {("GET", "/api/v1/hello/", 200): 4}
    assert counts(second) == {("GET", "/api/v1/hello/", 200): 3}
    assert second.metrics[REQUESTS].temporality == "delta"
    assert second.metrics[DURATION].points[0].count == 3
    # Consecutive delta points touch: the second starts where the first ended.
    assert second.metrics[REQUESTS].points[0].start_time_unix_nano == first.metrics[REQUESTS].points[0].time_unix_nano


@pytest.mark.parametrize("temporality", ["cumulative", "delta"])
def test_a_dead_endpoint_costs_one_warning_and_its_points_arrive_when_it_answers(
    settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, temporality: str
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", temporality)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-api-key=header-secret-value")
    port = free_port()
    exporter = exporter_to(f"http://user:url-secret@127.0.0.1:{port}/v1/metrics", settings)
    caplog.set_level(logging.INFO, "django_prodkit.metrics")
    for _ in range(3):
        serve(2)
        exporter.export_once()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text
    assert "Could not export metrics to http://127.0.0.1" in warnings[0].getMessage()
    receiver = Receiver(port=port)
    try:
        serve(1)
        exporter.export_once()
        exports = receiver.wait_for_exports(1)
        if temporality == "cumulative":
            # Every interval's point, oldest first: a backend sees the outage's resolution too.
            assert [counts(e)[("GET", "/api/v1/hello/", 200)] for e in exports] == [2, 4, 6, 7]
        else:
            assert [counts(e)[("GET", "/api/v1/hello/", 200)] for e in exports] == [7]
    finally:
        receiver.close()
    assert "again" in caplog.text
    assert "secret" not in caplog.text


def test_the_buffer_keeps_the_newest_points(settings: Any) -> None:
    port = free_port()
    exporter = exporter_to(f"http://127.0.0.1:{port}/v1/metrics", settings, BUFFER_SIZE=2)
    for _ in range(5):
        serve(1)
        exporter.export_once()
    receiver = Receiver(port=port)
    try:
        exporter.export_once()
        exports = receiver.wait_for_exports(2)
        assert [counts(e)[("GET", "/api/v1/hello/", 200)] for e in exports] == [5, 5]
    finally:
        receiver.close()


def test_sigv4_for_cloudwatch_is_verified_by_the_receiver(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS.secret_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    receiver = Receiver(credentials=CREDENTIALS, region="eu-west-1")
    try:
        exporter = exporter_to(receiver.metrics_url, settings, AWS_SIGV4=True, AWS_REGION="eu-west-1")
        serve(2)
        exporter.export_once()
        (export,) = receiver.wait_for_exports(1)
        assert counts(export) == {("GET", "/api/v1/hello/", 200): 2}
        assert receiver.refused == 0
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        wrong = exporter_to(receiver.metrics_url, settings, AWS_SIGV4=True, AWS_REGION="eu-west-1")
        wrong.export_once()
        assert receiver.refused == 1
    finally:
        receiver.close()


def test_the_cloudwatch_endpoint_is_the_default_with_sigv4(settings: Any) -> None:
    settings.PRODKIT = {"OTLP_METRICS": {"ENABLED": True, "AWS_SIGV4": True, "AWS_REGION": "us-east-2"}}
    assert resolve(get_config()).endpoint_for("us-east-2") == "https://monitoring.us-east-2.amazonaws.com/v1/metrics"


def test_the_export_thread_starts_at_the_first_request_and_stops(
    receiver: Receiver, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "100")
    settings.PRODKIT = {"OTLP_METRICS": {"ENABLED": True, "ENDPOINT": receiver.metrics_url}}
    assert otlp.install()
    assert otlp.get_exporter() is None
    serve(2)
    exports = receiver.wait_for_exports(1)
    assert otlp.get_exporter() is not None
    assert counts(exports[0])[("GET", "/api/v1/hello/", 200)] == 2
    otlp.shutdown()
    assert otlp.get_exporter() is None
    settings.PRODKIT = {}
    assert not otlp.install()


def environment(monkeypatch: pytest.MonkeyPatch, **variables: str) -> Any:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return resolve(get_config())


def test_the_standard_variables(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.PRODKIT = {}
    resolved = environment(
        monkeypatch,
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT="https://otlp.example.com/otlp/",
        OTEL_EXPORTER_OTLP_METRICS_HEADERS="Authorization=Basic%20abc%3D,x-scope=blog",
        OTEL_EXPORTER_OTLP_METRICS_TIMEOUT="2.5",
        OTEL_METRIC_EXPORT_INTERVAL="15000",
        OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE="LowMemory",
    )
    assert resolved.enabled
    assert resolved.endpoint_for(None) == "https://otlp.example.com/otlp/v1/metrics"
    assert resolved.headers == (("authorization", "Basic abc="), ("x-scope", "blog"))
    assert (resolved.timeout, resolved.interval, resolved.temporality) == (2.5, 15.0, "delta")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://collector:4318/v1/metrics")
    assert resolve(get_config()).endpoint_for(None) == "http://collector:4318/v1/metrics"
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    settings.PRODKIT = {"OTLP_METRICS": {"ENABLED": True}}
    assert not resolve(get_config()).enabled


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("OTEL_METRIC_EXPORT_INTERVAL", "soon", "OTEL_METRIC_EXPORT_INTERVAL"),
        ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "-1", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT"),
        ("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sometimes", "TEMPORALITY"),
        ("OTEL_METRICS_EXPORTER", "otlp,statsd", "statsd"),
        ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "api-key", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"),
        ("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "brotli", "COMPRESSION"),
    ],
)
def test_a_malformed_variable_is_a_check_error_naming_it(
    settings: Any, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    errors = [m for m in run_checks() if m.id == "prodkit.E142"]
    assert len(errors) == 1
    assert named in errors[0].msg
    assert not otlp.install()


def test_a_header_value_never_reaches_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "good=1,bad header=top-secret-token")
    (error,) = [m for m in run_checks() if m.id == "prodkit.E142"]
    assert "top-secret-token" not in error.msg


def ids(settings: Any, **section: Any) -> set[str]:
    settings.PRODKIT = {"OTLP_METRICS": {"ENABLED": True, **section}}
    return {m.id for m in run_checks() if m.id and m.id.startswith(("prodkit.E14", "prodkit.W14"))}


def test_checks(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ids(settings) == set()
    assert ids(settings, ENDPOINT="collector:4318") == {"prodkit.E143"}
    assert ids(settings, INTERVAL=0.0) == {"prodkit.E144"}
    assert ids(settings, BUFFER_SIZE=0) == {"prodkit.E144"}
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    assert ids(settings, AWS_SIGV4=True) == {"prodkit.E141"}
    assert ids(settings, AWS_SIGV4=True, AWS_REGION="eu-west-1") == set()
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp,console")
    assert ids(settings) == {"prodkit.W140"}
    monkeypatch.delenv("OTEL_METRICS_EXPORTER")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    assert ids(settings) == {"prodkit.W142"}
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/protobuf")
    assert ids(settings) == set()
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("MetricsMiddleware")]
    assert ids(settings) == {"prodkit.W141"}


def test_a_missing_extra_is_a_check_error(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name.startswith("opentelemetry.proto") else real(name, *a)
    )
    assert ids(settings) == {"prodkit.E140"}


@pytest.mark.parametrize("compression", ["gzip", "deflate"])
def test_compressed_exports(
    receiver: Receiver, settings: Any, monkeypatch: pytest.MonkeyPatch, compression: str
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", compression)
    exporter = exporter_to(receiver.metrics_url, settings)
    serve(2)
    exporter.export_once()
    (export,) = receiver.wait_for_exports(1)
    assert counts(export) == {("GET", "/api/v1/hello/", 200): 2}


@pytest.mark.timeout(30)
def test_requests_are_served_while_an_export_hangs(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    # Accepts connections (the kernel's backlog) and never answers: every export waits for its timeout.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "10")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "3")
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1/metrics"
        settings.PRODKIT = {"OTLP_METRICS": {"ENABLED": True, "ENDPOINT": url}}
        assert otlp.install()
        serve(1)
        deadline = time.monotonic() + 10
        while otlp.get_exporter() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # an export is now waiting for an answer
        serve(20)
        response = Client().get("/api/v1/hello/")
        assert response.status_code == 200
        assert get_store().families()[0].samples[0].value == 22
        otlp.shutdown()


def test_a_refused_point_is_dropped_with_one_warning(
    receiver: Receiver, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = exporter_to(receiver.metrics_url, settings)
    receiver.answer = 400
    for _ in range(3):
        serve(1)
        exporter.export_once()
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"{receiver.metrics_url} refused a metrics export with HTTP 400; it was dropped."
    ]
    receiver.answer = 200
    exporter.export_once()
    (export,) = receiver.wait_for_exports(1)
    assert counts(export) == {("GET", "/api/v1/hello/", 200): 3}
