"""Task runs published to CloudWatch from a worker: EMF documents and PutMetricData datums, both from one interval."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from django_prodkit import cloudwatch
from django_prodkit.cloudwatch import api, emf
from django_prodkit.cloudwatch.aggregator import Aggregator, Interval
from django_prodkit.metrics.store import reset_store
from django_prodkit.tasks.metrics import record_task
from tests.test_cloudwatch import make_settings

SCHEMA = json.loads((Path(__file__).parent / "emf.schema.json").read_text())


def task_interval(runs: list[tuple[str, str, float]]) -> Interval:
    aggregator = Aggregator(10_000)
    for task, outcome, duration in runs:
        aggregator.add_task(task, outcome, duration)
    interval = aggregator.rotate(1_700_000_000.0)
    assert interval is not None
    return interval


RUNS = [("blog.notify", "succeeded", float(n)) for n in range(1, 131)] + [
    ("blog.notify", "failed", 5.0),
    ("blog.notify", "retried", 6.0),
    ("blog.digest", "succeeded", 40.0),
]


def test_emf_documents_for_tasks() -> None:
    documents = list(emf.interval_documents(make_settings(), task_interval(RUNS)))
    for document in documents:
        jsonschema.validate(document, SCHEMA)
        directive = document["_aws"]["CloudWatchMetrics"][0]
        assert directive["Dimensions"] == [["Service", "Environment"], ["Service", "Environment", "Task"]]
        assert all(metric["Name"] in document for metric in directive["Metrics"])
    notify = [d for d in documents if d["Task"] == "blog.notify"]
    assert (notify[0]["TaskCount"], notify[0]["TaskSucceeded"], notify[0]["TaskFailed"]) == (132, 130, 1)
    assert notify[0]["TaskRetried"] == 1
    assert sum(len(d["TaskDuration"]) for d in notify) == 132
    assert all("RequestCount" not in d for d in documents)


def test_put_metric_data_datums_for_tasks() -> None:
    datums = api.interval_datums(make_settings(), task_interval(RUNS))
    # A worker's interval has no requests: no request totals of zero.
    assert {d["MetricName"] for d in datums} == {
        "TaskCount",
        "TaskSucceeded",
        "TaskFailed",
        "TaskRetried",
        "TaskDuration",
    }
    by_task = {(d["Dimensions"][-1]["Value"], d["MetricName"]): d for d in datums if "Value" in d}
    assert by_task[("blog.notify", "TaskCount")]["Value"] == 132
    assert by_task[("blog.digest", "TaskSucceeded")]["Value"] == 1
    durations = [
        d for d in datums if d["MetricName"] == "TaskDuration" and d["Dimensions"][-1]["Value"] == "blog.notify"
    ]
    assert sum(sum(d["Counts"]) for d in durations) == 132
    assert all(len(d["Values"]) <= api.MAX_VALUES_PER_DATUM for d in durations)


@pytest.fixture
def enabled(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    settings.PRODKIT = {"SERVICE_NAME": "worker", "CLOUDWATCH": {"ENABLED": True, "FLUSH_INTERVAL": 60}}
    monkeypatch.setattr("sys.argv", ["celery", "-A", "proj", "worker"])
    # A publisher another test left installed in this worker process would hold that test's runs.
    _uninstall()
    reset_store()
    yield
    _uninstall()
    reset_store()


def _uninstall() -> None:
    cloudwatch.shutdown()
    cloudwatch.remove_observer(cloudwatch.observe)
    cloudwatch.remove_task_observer(cloudwatch.observe_task)
    cloudwatch._publisher = None
    cloudwatch._pid = None


@pytest.mark.usefixtures("enabled")
def test_a_workers_task_runs_reach_the_publisher(capsys: pytest.CaptureFixture[str]) -> None:
    assert cloudwatch.install() is True
    record_task("blog.notify", "succeeded", 0.002)
    record_task("blog.notify", "failed", 0.004)
    cloudwatch.shutdown()
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [(d["Task"], d["TaskCount"], d["TaskFailed"]) for d in documents] == [("blog.notify", 2, 1)]
