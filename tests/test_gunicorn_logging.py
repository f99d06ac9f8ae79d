"""gunicorn's own lines (``Booting worker``, ``WORKER TIMEOUT``) as JSON lines, from a real gunicorn."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.test_metrics_e2e import free_port, request, wait_until_serving

ROOT = Path(__file__).resolve().parent.parent


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.e2e
@pytest.mark.timeout(90)
def test_booting_and_worker_timeout_are_json_lines_of_the_same_shape(tmp_path: Path) -> None:
    port = free_port()
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings_server", "PYTHONPATH": str(ROOT)}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "multiproc")
    command = [sys.executable, "-m", "gunicorn", "-c", "python:django_prodkit.gunicorn", "tests.wsgi:application"]
    command += ["--workers", "1", "--timeout", "2", "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "2"]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
    try:
        wait_until_serving(port, server, err)
        # The master aborts the worker mid-request: gunicorn answers 500 or the connection just closes.
        with contextlib.suppress(http.client.HTTPException, ConnectionError):
            assert request(port, "GET", "/api/v1/hangs/")[0] == 500
        deadline = time.monotonic() + 30
        while "Booting worker" not in out.read_text().split("WORKER TIMEOUT")[-1] and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(20)
    lines = json_lines(out.read_text())  # every line on stdout parses as JSON
    assert "Booting worker" not in err.read_text()
    events = [(line["logger"], line["level"], line["event"].split(" (pid")[0].split(" with pid")[0]) for line in lines]
    assert ("gunicorn.error", "info", "Booting worker") in events
    assert ("gunicorn.error", "critical", "WORKER TIMEOUT") in events
    assert events.count(("gunicorn.error", "info", "Booting worker")) >= 2  # the replacement worker too
    for line in lines:
        assert {"timestamp", "level", "logger", "event", "request_id"} <= set(line)
