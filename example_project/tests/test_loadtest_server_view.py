"""``manage.py loadtest --server-metrics`` and ``--serve`` against the example under gunicorn with 2 workers: the
server's counts per route agree exactly with the client's, and a proxy that answers some requests itself is caught.
"""

from __future__ import annotations

import http.client
import json
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import demo

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

POSTS, POST, TAGS = "/api/v1/posts/", "/api/v1/posts/demo-post-1/", "/api/v1/tags/"
TOKEN_ENV = "PRODKIT_LOADTEST_METRICS_TOKEN"
Site = tuple[demo.Server, dict[str, str], str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    workdir = tmp_path_factory.mktemp("site")
    token = secrets.token_urlsafe(24)
    env = demo.server_environment(workdir, token)
    env["PYTHONPATH"] = ":".join(p for p in sys.path if p)  # the same packages as this interpreter
    demo.prepare_database(sys.executable, env, posts=5, static=False)
    with demo.running_server(sys.executable, env, workdir, workers=2) as server:
        yield server, env, token


def loadtest(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = demo.manage(
        sys.executable, ["loadtest", *args], env, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    return result.returncode, result.stdout


def view_of(report: Path) -> dict[str, Any]:
    view: dict[str, Any] = json.loads(report.read_text())["server_metrics"]
    return view


def test_server_and_client_counts_agree_per_route(site: Site, tmp_path: Path) -> None:
    server, env, token = site
    report = tmp_path / "r.json"
    args = ["4", "15", "--url", server.url, "--path", POSTS, "--path", POST, "--path", TAGS, "--warmup", "6"]
    args += ["--target-rps", "1", "--target-avg-ms", "1e6", "--server-metrics", server.url + "/api/v1/metrics/"]
    status, out = loadtest({**env, TOKEN_ENV: token}, *args, "--json", str(report))
    assert status == 0, out
    assert token not in out
    view = view_of(report)
    rows = {row["route"]: row for row in view["routes"]}
    assert set(rows) == {POSTS, "/api/v1/posts/<slug:slug>/", TAGS}
    for row in rows.values():
        # 60 measured and 6 warm-up requests in all, 20 + 2 per path: every one counted once by the server.
        assert row["server_counted"] == row["client_answered"] == 22, row
        assert row["server_ms"]["p50"] is not None
    assert view["mismatches"] == []
    assert "Client and server counts agree." in out
    assert "client vs server: p50" in out


class Proxy(ThreadingHTTPServer):
    """A reverse proxy in front of the site that answers ``cached`` paths itself, as a cache would."""

    daemon_threads = True

    def __init__(self, backend: str, cached: str) -> None:
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.backend = backend.removeprefix("http://")
        self.cached = cached
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Proxy

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith(self.server.cached):
            status, body, content_type = 200, b"[]", "application/json"
        else:
            upstream = http.client.HTTPConnection(self.server.backend, timeout=10)
            upstream.request("GET", self.path, headers={"Host": "127.0.0.1"})
            answer = upstream.getresponse()
            status, body, content_type = answer.status, answer.read(), answer.getheader("Content-Type", "")
            upstream.close()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def proxy(backend: str, cached: str) -> Iterator[Proxy]:
    with Proxy(backend, cached) as running:
        running._thread.start()
        try:
            yield running
        finally:
            running.shutdown()
            running._thread.join()


def test_a_proxy_answering_requests_itself_is_flagged(site: Site, tmp_path: Path) -> None:
    server, env, token = site
    report = tmp_path / "r.json"
    with proxy(server.url, TAGS) as front:
        args = ["2", "10", "--url", front.url, "--path", POSTS, "--path", TAGS, "--target-rps", "1"]
        args += ["--target-avg-ms", "1e6", "--server-metrics", server.url + "/api/v1/metrics/"]
        status, out = loadtest({**env, TOKEN_ENV: token}, *args, "--json", str(report))
    assert status == 0, out
    view = view_of(report)
    rows = {row["route"]: row for row in view["routes"]}
    assert rows[POSTS]["server_counted"] == rows[POSTS]["client_answered"] == 10
    assert (rows[TAGS]["client_answered"], rows[TAGS]["server_counted"]) == (10, 0)
    assert view["mismatches"] == [
        f"GET {TAGS}: the client had 10 answers the server never counted: something in front of it answered them "
        "(a proxy, a cache, a load balancer), or a worker's counts were lost"
    ]
    assert f"MISMATCH GET {TAGS}" in out


def test_serve_reads_the_served_projects_metrics_itself(site: Site, tmp_path: Path) -> None:
    _, env, _ = site
    report = tmp_path / "r.json"
    args = ["3", "10", "--serve", "--serve-workers", "2", "--path", POSTS, "--path", TAGS, "--target-rps", "1"]
    status, out = loadtest(env, *args, "--target-avg-ms", "1e6", "--json", str(report))
    assert status == 0, out
    view = view_of(report)
    assert [(row["route"], row["server_counted"]) for row in view["routes"]] == [(POSTS, 15), (TAGS, 15)]
    assert view["mismatches"] == []


def test_merged_segments_are_compared_with_the_server_over_the_whole_run(site: Site, tmp_path: Path) -> None:
    server, env, token = site
    reports = [tmp_path / "1.json", tmp_path / "2.json"]
    merged = tmp_path / "merged.json"
    common = ["3", "10", "--url", server.url, "--path", POSTS, "--target-rps", "1", "--target-avg-ms", "1e6"]
    common += ["--server-metrics", server.url + "/api/v1/metrics/"]
    for index, report in enumerate(reports, 1):
        status, out = loadtest({**env, TOKEN_ENV: token}, *common, "--segment", f"{index}/2", "--json", str(report))
        assert status == 0, out
        # A segment alone is a share of what the server counted: the comparison waits for --merge.
        assert "compared with the server's by --merge" in view_of(report)["error"]
    status, out = loadtest(env, "--merge", *map(str, reports), "--target-rps", "1", "--json", str(merged))
    assert status == 0, out
    view = view_of(merged)
    assert [(row["route"], row["client_answered"], row["server_counted"]) for row in view["routes"]] == [
        (POSTS, 30, 30)
    ]
    assert view["mismatches"] == []
