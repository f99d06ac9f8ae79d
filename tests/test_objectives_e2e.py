"""Every dashboard query and recorded objective, evaluated by a real Prometheus scraping gunicorn with 2 workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.test import override_settings

from django_prodkit.objectives.grafana import RATE
from tests.objectives import PRODKIT
from tests.test_metrics_e2e import TOKEN, free_port, request, wait_until_serving
from tests.test_metrics_recycling import stop
from tests.tools import require_tool

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
#: Scrapes and rule evaluations every second keep the test to seconds; rate windows need a few samples.
SCRAPE = "1s"
WINDOW = "15s"
TRAFFIC = [("/api/v1/hello/", 200), ("/api/v1/items/first/", 200), ("/api/v1/boom/", 500)]


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings_server", "PYTHONPATH": str(ROOT)}
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "multiproc")
    command = [sys.executable, "-m", "gunicorn", "-c", "python:django_prodkit.gunicorn", "tests.wsgi:application"]
    command += ["--workers", "2", "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(port, process, log)
        yield port
    finally:
        stop(process)


def query(port: int, promql: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", (promql, body)
    return list(body["data"]["result"])


@pytest.fixture
def prometheus(tmp_path: Path, gunicorn: int) -> Iterator[int]:
    binary = require_tool("prometheus")
    rules = yaml.safe_load(generated("prometheus"))
    for group in rules["groups"]:
        group["interval"] = SCRAPE  # the budgets' 2m would leave their panel empty for this short test
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    config = {
        "global": {"scrape_interval": SCRAPE, "evaluation_interval": SCRAPE},
        "rule_files": [str(tmp_path / "rules.yml")],
        "scrape_configs": [
            {
                "job_name": "blog",
                "metrics_path": "/api/v1/metrics/",
                "params": {"format": ["prometheus"]},
                "authorization": {"credentials": TOKEN},
                "static_configs": [{"targets": [f"127.0.0.1:{gunicorn}"]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    command = [binary, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}"]
    command += [f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    log = tmp_path / "prometheus.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if query(port, 'up{job="blog"} == 1'):
                    break
            except OSError:
                pass
            time.sleep(0.25)
        else:
            pytest.fail(f"prometheus did not scrape gunicorn within 20 s:\n{log.read_text()}")
        yield port
    finally:
        stop(process)


def generated(target: str) -> str:
    out = StringIO()
    with override_settings(PRODKIT={**PRODKIT, "OBJECTIVES_MIN_REQUESTS": 0}):
        call_command("prodkit_monitoring", target, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.timeout(120)
def test_every_dashboard_query_answers_from_a_real_prometheus(gunicorn: int, prometheus: int) -> None:
    deadline = time.monotonic() + 40
    missing: list[str] = ["not queried yet"]
    dashboard = json.loads(generated("grafana"))
    while missing and time.monotonic() < deadline:
        for path, status in TRAFFIC:
            assert request(gunicorn, "GET", path)[0] == status
        time.sleep(0.5)
        missing = []
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                result = query(prometheus, target["expr"].replace(RATE, WINDOW))
                if not result and not panel["title"].startswith("Task"):
                    missing.append(panel["title"])
    assert missing == []
    # The objectives' figures are what the traffic says: a third of the requests failed, none was slow.
    ratio = query(prometheus, 'prodkit_slo:error_ratio:rate5m{slo="api-availability"}')
    assert 0.1 < float(ratio[0]["value"][1]) < 0.6
    latency = query(prometheus, 'prodkit_slo:error_ratio:rate5m{slo="items-latency"}')
    assert float(latency[0]["value"][1]) == 0.0
