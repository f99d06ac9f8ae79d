"""End to end: ``--serve`` with gunicorn, a real ``python -m django loadtest`` process, Ctrl-C, the reports."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_prodkit.loadtest.report_json import SCHEMA_PATH
from tests.loadtest_servers import serving
from tests.tools import require_tool

# Every test here starts servers and event loops: a hang fails the test, it does not eat CI's time.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parent.parent
PID_RE = re.compile(r"Started gunicorn \(pid (\d+)\)")
HELLO = "/api/v1/hello/"


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def run_serve(*args: str) -> tuple[int, str, int]:
    """``loadtest --serve`` in this process; its exit status, output and gunicorn's PID."""
    out = StringIO()
    status = 0
    try:
        call_command("loadtest", "--serve", "--serve-workers", "1", *args, stdout=out, stderr=StringIO())
    except CommandError as exc:
        status = exc.returncode
    match = PID_RE.search(out.getvalue())
    assert match, out.getvalue()
    return status, out.getvalue(), int(match.group(1))


def test_serve_runs_the_project_under_gunicorn_and_stops_it(tmp_path: Path) -> None:
    """A passing run; its JSON report is valid against report.schema.json (the schema the docs link)."""
    report = tmp_path / "report.json"
    status, out, pid = run_serve("3", "10", "--path", HELLO, "--target-rps", "1", "--json", str(report))
    assert status == 0, out
    assert gone(pid)
    assert "Successful: 30 (100.0%)" in out
    assert f"Stopped gunicorn (pid {pid})" in out
    data = json.loads(report.read_text())
    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text()), format_checker=jsonschema.FormatChecker())
    assert data["config"]["url"].startswith("http://127.0.0.1:")
    assert data["passed"] is True


def test_serve_stops_gunicorn_when_the_criteria_fail() -> None:
    status, out, pid = run_serve("2", "5", "--path", "/api/v1/boom/")
    assert status == 3
    assert "HTTP 500: 10" in out
    assert gone(pid)


def test_serve_stops_gunicorn_when_it_never_gets_healthy() -> None:
    args = ("1", "1", "--health-path", "/api/v1/boom/", "--serve-timeout", "1.5")
    status, out, pid = run_serve(*args)
    assert status == 1
    assert gone(pid)
    assert "Starting load test" not in out


def django_process(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "django", "loadtest", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_real_process_exits_3_when_a_criterion_fails() -> None:
    with serving() as server:
        process = django_process("2", "5", "--url", server.url, "--target-p95-ms", "0")
        out, err = process.communicate(timeout=60)
        assert server.count == 10
    assert process.returncode == 3, err
    assert "P95 response:" in out
    assert "load test failed: P95 response" in err


def test_ctrl_c_prints_the_partial_report_and_stops_the_served_project() -> None:
    process = django_process("2", "--duration", "60", "--serve", "--serve-workers", "1", "--path", HELLO)
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Starting load test"):
                break
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    out = "".join(lines) + rest
    match = PID_RE.search(out)
    assert match, out
    assert process.returncode == 1, err
    assert "Interrupted: the report covers the requests finished before Ctrl-C." in out
    assert re.search(r"Total requests: [1-9]", out)
    assert gone(int(match.group(1)))


def html_report(tmp_path: Path) -> Path:
    report = tmp_path / "report.html"
    with serving("close", close_every=4) as server:
        args = ["4", "40", "--url", server.url, "--rate", "200", "--target-rps", "1", "--html", str(report)]
        call_command("loadtest", *args, stdout=StringIO(), stderr=StringIO())
    return report


def test_the_html_report_needs_no_network_and_renders_in_chromium(tmp_path: Path) -> None:
    chromium = require_tool("chromium")
    report = html_report(tmp_path)
    html = report.read_text()
    assert "<svg" in html
    assert "Latency percentiles over time" in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|url\(|@import""", html, re.IGNORECASE)
    screenshot = tmp_path / "report.png"
    command: list[Any] = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={screenshot}",
        "--window-size=1200,1600",
        report.as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    assert screenshot.stat().st_size > 10_000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
