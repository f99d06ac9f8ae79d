"""Django's development server: its ``django.server`` line for a request carries that request's id."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.test_metrics_e2e import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent


def get(url: str) -> tuple[int, str]:
    """Status and X-Request-ID of a GET to the local server."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
            return response.status, response.headers["X-Request-ID"]
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["X-Request-ID"]


def server_lines(output: Path) -> list[dict[str, Any]]:
    lines = []
    for line in output.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record["logger"] == "django.server":
                lines.append(record)
    return lines


@pytest.mark.timeout(90)
def test_runserver_lines_carry_the_request_id(tmp_path: Path) -> None:
    port = free_port()
    output = tmp_path / "runserver.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings_runserver", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload", "--skip-checks"]
    with output.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ok = get(f"http://127.0.0.1:{port}/api/v1/hello/")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"runserver did not start:\n{output.read_text()}")
                time.sleep(0.2)
        missing = get(f"http://127.0.0.1:{port}/api/v1/nothing-here/")
        assert (ok[0], missing[0]) == (200, 404)
        deadline = time.monotonic() + 10
        while len(server_lines(output)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    lines = server_lines(output)
    assert [(line["status_code"], line["request_id"]) for line in lines[-2:]] == [(200, ok[1]), (404, missing[1])]
