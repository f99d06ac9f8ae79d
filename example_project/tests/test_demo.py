"""``make demo``: its verdict is its exit status, its reports stay in a known folder, its notes explain the figures."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

import demo

PLANNED = 300


def report(*, failed: tuple[str, ...] = (), sent: int = PLANNED) -> dict[str, Any]:
    criteria = [{"name": name, "passed": name not in failed} for name in ("success_rate", "avg_ms", "rps", "p99_ms")]
    return {
        "totals": {"requests": sent, "warmup_requests": 0},
        "criteria": criteria,
        "latency_ms": {"p99": 180.0},
        "config": {"users": 20},
    }


def snapshot(count: int) -> dict[str, Any]:
    return {"request_count": count, "response_time_ms": {"p99": 40.0}}


BEFORE = snapshot(1)  # the start-up probe


def test_a_passing_run_explains_the_count_and_the_latencies() -> None:
    verdict = demo.judge(0, report(), BEFORE, snapshot(PLANNED + 1), planned=PLANNED)
    assert verdict.passed
    count_note, latency_note = verdict.notes
    assert count_note.startswith("request_count 301 = 300 load-test requests (warm-up included) + 1 start-up health")
    assert "180.0 ms > seen by the server 40.0 ms" in latency_note
    assert "queues" in latency_note


def test_a_bucketed_server_percentile_above_the_clients_is_explained() -> None:
    slow_bucket = {"request_count": PLANNED + 1, "response_time_ms": {"p99": 250.0}}
    (_, latency_note) = demo.judge(0, report(), BEFORE, slow_bucket, planned=PLANNED).notes
    assert "180.0 ms <= seen by the server 250.0 ms" in latency_note
    assert "upper bound of a histogram bucket" in latency_note


def test_missed_criteria_fail_the_demo() -> None:
    verdict = demo.judge(demo.LOADTEST_CRITERIA_FAILED, report(failed=("p99_ms",)), BEFORE, snapshot(301), PLANNED)
    assert not verdict.passed
    assert verdict.failures == ["the load test missed its criteria: p99_ms"]


@pytest.mark.parametrize(
    ("status", "sent", "counted", "expected"),
    [
        (1, PLANNED, 301, "manage.py loadtest failed with exit status 1"),
        (0, 299, 300, "the load test planned 300 requests but sent 299"),
        (0, PLANNED, 300, "request_count is 300, not the 300 load-test requests + 1 probe(s)"),
    ],
)
def test_errors_and_miscounts_fail_the_demo(status: int, sent: int, counted: int, expected: str) -> None:
    verdict = demo.judge(status, report(sent=sent), BEFORE, snapshot(counted), PLANNED)
    assert verdict.failures == [expected]


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_a_failed_load_test_makes_the_demo_exit_non_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in sys.path if p))
    reports = tmp_path / "reports"
    # A p99 no server meets: the load test fails its criteria, so the demo must fail too (it used to exit 0).
    args = ["--python", sys.executable, "--users", "4", "--requests", "5", "--workers", "2", "--reports", str(reports)]
    status = demo.main([*args, "--p99-ms", "0.001"])
    out = capsys.readouterr().out
    assert status == 1
    assert "DEMO FAILED: the load test missed its criteria: P99 response" in out
    paths = [reports / "loadtest.html", reports / "loadtest.json", reports / "metrics.json"]
    assert out.rstrip().splitlines()[-5:-1] == ["==> reports of this run:", *(f"    {p}" for p in paths)]
    assert all(path.is_file() for path in paths)
    assert json.loads(paths[1].read_text())["passed"] is False
    assert re.search(r"request_count \d+ = 40 load-test requests \(warm-up included\) \+ \d+ start-up health", out)


def test_reports_folder_is_git_ignored() -> None:
    ignored = (demo.REPO_DIR / ".gitignore").read_text().splitlines()
    assert f"{demo.REPORTS_DIR.relative_to(demo.REPO_DIR)}/" in ignored
