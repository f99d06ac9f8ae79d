"""CloudWatch publishing without servers: aggregation, EMF documents, PutMetricData limits, lifecycle, checks."""

from __future__ import annotations

import json
import logging
import math
from io import StringIO
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.core.management import call_command
from django.test import Client

from django_prodkit import cloudwatch
from django_prodkit.cloudwatch import api, emf
from django_prodkit.cloudwatch.aggregator import Aggregator, Interval, SeriesStats, round_duration, status_class
from django_prodkit.cloudwatch.checks import check_cloudwatch
from django_prodkit.cloudwatch.config import CloudWatchSettings
from django_prodkit.cloudwatch.publisher import Publisher
from django_prodkit.conf import reset_config
from django_prodkit.metrics.observers import observers

SCHEMA = json.loads((Path(__file__).parent / "emf.schema.json").read_text())
METRICS = [
    "django_prodkit.middleware.RequestIDMiddleware",
    "django_prodkit.middleware.MetricsMiddleware",
    "django.middleware.common.CommonMiddleware",
]


def make_settings(**overrides: Any) -> CloudWatchSettings:
    values: dict[str, Any] = {
        "enabled": True,
        "mode": "emf",
        "namespace": "Tests",
        "service": "svc",
        "flush_interval": 60.0,
        "dimensions": (("Environment", "test"),),
        "buffer_size": 100,
        "logger": None,
        "region": "us-east-1",
        "endpoint_url": "http://127.0.0.1:9",
        "api_timeout": 0.5,
    }
    values.update(overrides)
    return CloudWatchSettings(**values)


def interval_with(
    series: dict[tuple[str, str], list[tuple[int, float]]], timestamp: float = 1_700_000_000.0
) -> Interval:
    aggregator = Aggregator(10_000)
    for (route, method), requests in series.items():
        for status, duration in requests:
            aggregator.add(method, route, status, duration)
    interval = aggregator.rotate(timestamp)
    assert interval is not None
    return interval


def test_durations_are_rounded_to_two_significant_digits() -> None:
    assert [round_duration(v) for v in (123.4, 0.0456, 9.96, -1.0, 0.0000001)] == [120.0, 0.046, 10.0, 0.0, 0.0]
    assert [status_class(s) for s in (200, 302, 404, 503, 101, 600)] == ["2xx", "3xx", "4xx", "5xx", None, None]


def test_aggregator_counts_every_request_and_bounds_values() -> None:
    aggregator = Aggregator(10)
    for i in range(1000):
        aggregator.add("GET", "/a/", 200 if i % 10 else 500, 1.0 + i / 10)
    aggregator.add("GET", "/a/", 200, math.nan)  # counted, but its duration cannot be published
    interval = aggregator.rotate()
    assert interval is not None
    assert aggregator.rotate() is None
    stats = interval.series[("/a/", "GET")]
    assert stats.count == 1001
    assert sum(stats.durations.values()) == 1000
    assert stats.statuses == {"2xx": 901, "3xx": 0, "4xx": 0, "5xx": 100}
    assert len(stats.durations) < 200


def test_buffer_overflow_drops_oldest_and_counts_it() -> None:
    aggregator = Aggregator(buffer_size=2)
    for second in range(3):
        aggregator.add("GET", "/a/", 200, 1.0)
        aggregator.add("GET", "/b/", 200, 1.0)
        aggregator.rotate(float(second))
    overflow = aggregator.take_overflow()
    assert overflow is not None
    assert (overflow.requests, overflow.series, overflow.intervals) == (4, 4, 2)
    assert aggregator.take_overflow() is None
    assert [i.timestamp for i in aggregator.pending()] == [2.0]


def test_emf_documents_follow_the_specification_and_its_limits() -> None:
    requests = [(200, float(i)) for i in range(230)] + [(404, 3.0)] * 20
    interval = interval_with({("/api/v1/items/<slug:slug>/", "GET"): requests, ("/x/", "POST"): [(500, 2.0)]})
    documents = list(emf.interval_documents(make_settings(), interval))
    for document in documents:
        jsonschema.validate(document, SCHEMA)
        assert len(json.dumps(document)) < 8 * 1024
        directive = document["_aws"]["CloudWatchMetrics"][0]
        assert directive["Dimensions"] == [["Service", "Environment"], ["Service", "Environment", "Endpoint", "Method"]]
        assert all(metric["Name"] in document for metric in directive["Metrics"])
        assert document["_aws"]["Timestamp"] == 1_700_000_000_000
    per_series = [d for d in documents if d["Endpoint"] == "/api/v1/items/<slug:slug>/"]
    assert [len(d["ResponseTime"]) for d in per_series] == [100, 100, 50]
    assert per_series[0]["RequestCount"] == 250
    assert per_series[0]["Status4xx"] == 20
    assert all("RequestCount" not in d for d in per_series[1:])
    assert sum(d.get("RequestCount", 0) for d in documents) == 251


def test_emf_writer_to_stdout_and_to_a_logger(capsys: pytest.CaptureFixture[str], caplog: Any) -> None:
    interval = interval_with({("/a/", "GET"): [(200, 1.0)]})
    emf.EMFWriter(make_settings()).send(interval)
    line = capsys.readouterr().out.strip()
    assert json.loads(line)["RequestCount"] == 1
    emf.EMFWriter(make_settings()).send(interval)  # already written: a resend writes nothing again
    assert capsys.readouterr().out == ""
    with caplog.at_level(logging.INFO, logger="emf.out"):
        emf.EMFWriter(make_settings(logger="emf.out")).send(interval_with({("/a/", "GET"): [(200, 1.0)]}))
    assert json.loads(caplog.records[0].getMessage())["Endpoint"] == "/a/"


def test_put_metric_data_requests_respect_every_limit() -> None:
    series = {(f"/r{i}/", "GET"): [(200, float(v)) for v in range(1, 400)] for i in range(300)}
    interval = interval_with(series)
    datums = api.interval_datums(make_settings(), interval)
    chunks = api.chunk_datums(datums)
    assert len(chunks) > 1
    assert sum(len(c) for c in chunks) == len(datums)
    for chunk in chunks:
        assert len(chunk) <= api.MAX_DATUMS_PER_CALL
        assert sum(api.estimate_size(d) for d in chunk) <= api.CALL_BYTES_BUDGET < api.MAX_CALL_BYTES
        for datum in chunk:
            assert len(datum["Dimensions"]) <= 30
            values = datum.get("Values", [datum.get("Value")])
            assert len(values) <= api.MAX_VALUES_PER_DATUM
            assert all(math.isfinite(v) for v in values)
    service = [d for d in datums if len(d["Dimensions"]) == 2]
    assert next(d["Value"] for d in service if d["MetricName"] == "RequestCount") == 300 * 399
    assert sum(sum(d["Counts"]) for d in service if d["MetricName"] == "ResponseTime") == 300 * 399


def test_unreachable_cloudwatch_keeps_data_and_logs_overflow_once(caplog: Any) -> None:
    publisher = Publisher(make_settings(mode="api", buffer_size=2))
    try:
        for second in range(3):
            publisher.observe("GET", f"/r{second}/", 200, 5.0)
            publisher.aggregator.rotate(float(second))
        with caplog.at_level(logging.WARNING, logger="django_prodkit.cloudwatch"):
            assert publisher.flush_pending() is False
        assert publisher.aggregator.pending_series == 2  # kept for the next attempt
        messages = [r.getMessage() for r in caplog.records]
        assert sum("buffer full" in m for m in messages) == 1
        assert any("dropped the metrics of 1 requests" in m for m in messages)
        assert any("publishing failed" in m for m in messages)
    finally:
        publisher.close(timeout=0.1)


def test_non_server_management_commands_do_not_publish() -> None:
    assert cloudwatch.is_non_server_command(["manage.py", "migrate"])
    assert cloudwatch.is_non_server_command(["/venv/bin/django-admin", "cloudwatch_dashboard"])
    assert cloudwatch.is_non_server_command(["/lib/python3/site-packages/django/__main__.py", "shell"])
    assert not cloudwatch.is_non_server_command(["manage.py", "runserver"])
    assert not cloudwatch.is_non_server_command(["/venv/bin/gunicorn", "app.wsgi"])
    assert not cloudwatch.is_non_server_command([])
    # A virtualenv whose path mentions django must not look like ``python -m django``.
    assert not cloudwatch.is_non_server_command(["/srv/django-site/venv/site-packages/gunicorn/__main__.py", "app"])


@pytest.fixture
def enabled(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    settings.MIDDLEWARE = METRICS
    settings.PRODKIT = {"SERVICE_NAME": "unit", "CLOUDWATCH": {"ENABLED": True, "FLUSH_INTERVAL": 60}}
    monkeypatch.setattr("sys.argv", ["gunicorn", "tests.wsgi"])
    yield settings
    cloudwatch.shutdown()
    cloudwatch.remove_observer(cloudwatch.observe)
    # Plain assignments, not monkeypatch: its undo runs after this teardown and would restore the closed publisher.
    cloudwatch._publisher = None
    cloudwatch._pid = None


def test_requests_reach_the_publisher_and_exit_flushes_them(enabled: Any, capsys: Any) -> None:
    assert cloudwatch.install() is True
    assert cloudwatch.observe in observers()
    assert cloudwatch.get_publisher() is None  # nothing starts before the first request
    client = Client()
    for _ in range(3):
        client.get("/api/v1/hello/")
    client.get("/nowhere/")
    assert cloudwatch.get_publisher() is not None
    cloudwatch.shutdown()
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    counts = {d["Endpoint"]: d["RequestCount"] for d in documents}
    assert counts == {"/api/v1/hello/": 3, "<unmatched>": 1}


def test_install_is_off_when_disabled_or_in_a_management_command(enabled: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr("sys.argv", ["manage.py", "migrate"])
    assert cloudwatch.install() is False
    assert cloudwatch.observe not in observers()
    monkeypatch.setattr("sys.argv", ["manage.py", "runserver"])
    enabled.PRODKIT = {"CLOUDWATCH": {"ENABLED": False}}
    assert cloudwatch.install() is False
    monkeypatch.setenv("ENABLE_CLOUDWATCH_METRICS", "true")
    reset_config()
    assert cloudwatch.install() is True


@pytest.mark.parametrize(
    ("cloudwatch_settings", "check_id"),
    [
        ({"MODE": "xml"}, "prodkit.E040"),
        ({"FLUSH_INTERVAL": 0}, "prodkit.E042"),
        ({"BUFFER_SIZE": 0}, "prodkit.E043"),
        ({"NAMESPACE": "AWS/EC2"}, "prodkit.E044"),
        ({"DIMENSIONS": {"Service": "x"}}, "prodkit.E045"),
        ({"DIMENSIONS": {f"d{i}": "x" for i in range(28)}}, "prodkit.E045"),
        ({"SERVICE_NAME": ""}, "prodkit.E046"),
        ({"API_TIMEOUT": -1.0}, "prodkit.E047"),
        ({"ENABLED": True}, "prodkit.W040"),
    ],
)
def test_checks(settings: Any, cloudwatch_settings: dict[str, Any], check_id: str) -> None:
    settings.PRODKIT = {"CLOUDWATCH": cloudwatch_settings}
    assert [m.id for m in check_cloudwatch()] == [check_id]


def test_api_mode_checks_boto3_and_region(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.MIDDLEWARE = METRICS
    settings.PRODKIT = {"CLOUDWATCH": {"ENABLED": True, "MODE": "api"}}
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    assert [m.id for m in check_cloudwatch()] == ["prodkit.W041"]
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert check_cloudwatch() == []
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)  # boto3 not installed
    errors = check_cloudwatch()
    assert [m.id for m in errors] == ["prodkit.E041"]
    assert "django-prodkit[aws]" in str(errors[0].hint)


def test_dashboard_command_prints_put_dashboard_and_alarm_input(settings: Any) -> None:
    settings.PRODKIT = {"SERVICE_NAME": "blog", "CLOUDWATCH": {"NAMESPACE": "Blog"}}
    out = StringIO()
    call_command("cloudwatch_dashboard", "--region", "eu-west-1", "--error-rate", "2.5", "--include-4xx", stdout=out)
    document = json.loads(out.getvalue())
    body = json.loads(document["dashboard"]["DashboardBody"])
    assert document["dashboard"]["DashboardName"] == "blog"
    assert {w["properties"]["region"] for w in body["widgets"]} == {"eu-west-1"}
    percentiles = body["widgets"][1]["properties"]["metrics"]
    assert [m[-1]["stat"] for m in percentiles] == ["p50", "p95", "p99"]
    error_rate = next(a for a in document["alarms"] if a["AlarmName"] == "blog-error-rate")
    assert error_rate["Threshold"] == 2.5
    assert error_rate["Metrics"][0]["Expression"] == "100 * (m5xx + m4xx) / requests"
    assert all(a.get("Namespace", "Blog") == "Blog" for a in document["alarms"])


def test_service_totals_merge_every_series() -> None:
    total = SeriesStats()
    total.merge(interval_with({("/a/", "GET"): [(200, 1.0), (500, 2.0)], ("/b/", "GET"): [(200, 1.0)]}).total())
    assert (total.count, total.statuses["5xx"], total.durations) == (3, 1, {1.0: 2, 2.0: 1})


HOOKS_PROBE = """
import atexit, os, django
ours = []
def recording(register):
    def wrapper(*args, **kwargs):
        hooks = (*args, *kwargs.values())
        ours.extend(f for f in hooks if (getattr(f, "__module__", None) or "").startswith("django_prodkit"))
        return register(*args, **kwargs)
    return wrapper
atexit.register = recording(atexit.register)
os.register_at_fork = recording(os.register_at_fork)
import django_prodkit.cloudwatch, django_prodkit.checks
print(len(ours))
django.setup()
print(len(ours))
"""


@pytest.mark.parametrize(
    ("settings_module", "expected"), [("tests.settings", ["0", "0"]), ("tests.settings_cloudwatch", ["0", "2"])]
)
def test_process_hooks_are_registered_only_when_the_publisher_is_installed(
    settings_module: str, expected: list[str]
) -> None:
    # Importing the package (the system checks do) must not touch the process: no atexit or fork hook.
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if not key.startswith("ENABLE_")}
    result = subprocess.run(
        [sys.executable, "-c", HOOKS_PROBE],
        env={**env, "DJANGO_SETTINGS_MODULE": settings_module},
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == expected
