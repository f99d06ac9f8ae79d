"""End to end: the example under gunicorn with 4 workers, 50 users x 20 requests from ``manage.py loadtest``.

Asserts 100 % success, a distinct ``X-Request-ID`` for every response (read from the access log, which records the
id each response carried), and that the metrics endpoint's ``request_count`` rose by exactly 1,000. A second run
turns X-Ray and CloudWatch on through their environment variables and checks what reaches a local UDP "daemon" and
the EMF lines on stdout.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import sys
from collections import Counter
from pathlib import Path

import pytest

import demo

pytestmark = pytest.mark.e2e

USERS = 50
REQUESTS = 20
TOTAL = USERS * REQUESTS
LOAD_PATHS = ("/api/v1/posts/", "/api/v1/posts/demo-post-1/", "/api/v1/tags/", "/api/v1/posts/demo-post-1/comments/")


def access_log_events(text: str) -> list[dict[str, object]]:
    """The ``http_request`` events among the JSON lines gunicorn's workers wrote."""
    events = []
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if record.get("event") == "http_request":
            events.append(record)
    return events


def test_gunicorn_4_workers_1000_requests_exact_metrics_distinct_ids(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(24)
    env = demo.server_environment(tmp_path, token)
    env["PYTHONPATH"] = ":".join(p for p in sys.path if p)  # the same packages as this interpreter
    demo.prepare_database(sys.executable, env, posts=20, static=False)
    with demo.running_server(sys.executable, env, tmp_path, workers=4) as server:
        before = demo.metrics_snapshot(server, token)
        report_path = tmp_path / "loadtest.json"
        result = demo.run_loadtest(
            sys.executable, env, server, USERS, REQUESTS, report_path, paths=LOAD_PATHS, capture=True
        )
        assert result.returncode in (0, demo.LOADTEST_CRITERIA_FAILED), result.stdout
        report = json.loads(report_path.read_text())
        after = demo.metrics_snapshot(server, token)
    log_text = server.output()

    assert demo.sent_requests(report) == TOTAL
    assert report["totals"]["successful"] == TOTAL, report["totals"]
    assert report["totals"]["success_rate"] == 100.0
    assert report["status_codes"] == {"200": TOTAL}

    assert after["request_count"] - before["request_count"] == TOTAL
    assert int(after["status_codes"]["200"]) - int(before["status_codes"].get("200", 0)) == TOTAL

    load = [event for event in access_log_events(log_text) if str(event["path"]).startswith(LOAD_PATHS)]
    assert len(load) == TOTAL, log_text[-3000:]
    ids = Counter(str(event["request_id"]) for event in load)
    assert len(ids) == TOTAL, ids.most_common(3)
    assert all(len(request_id) >= 16 for request_id in ids)
    assert Counter(event["status"] for event in load) == {200: TOTAL}


def udp_datagrams(sock: socket.socket) -> list[bytes]:
    """Everything waiting on ``sock`` (the kernel keeps datagrams that arrived before we read)."""
    sock.settimeout(0.5)
    datagrams = []
    with contextlib.suppress(TimeoutError):
        while True:
            datagrams.append(sock.recv(65535))
    return datagrams


def test_xray_and_cloudwatch_are_switched_on_by_environment_variables(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(24)
    env = demo.server_environment(tmp_path, token)
    env["PYTHONPATH"] = ":".join(p for p in sys.path if p)
    demo.prepare_database(sys.executable, env, posts=5, static=False)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        env.update(
            {
                "ENABLE_XRAY": "true",
                "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
                "ENABLE_CLOUDWATCH_METRICS": "true",
                # As the Terraform passes var.cloudwatch_dimensions; its alarms select by Service and these.
                "CLOUDWATCH_DIMENSIONS": "Environment=e2e",
            }
        )
        ids = set()
        with demo.running_server(sys.executable, env, tmp_path, workers=2) as server:
            for path in ("/api/v1/posts/", "/api/v1/tags/", "/api/v1/posts/demo-post-1/"):
                status, headers, _ = demo.get(server.url + path)
                assert status == 200
                ids.add(headers["X-Request-ID"])
            served = demo.metrics_snapshot(server, token)["request_count"]
        segments = [json.loads(d.split(b"\n", 1)[1]) for d in udp_datagrams(daemon)]

    # X-Ray: sampled requests reached the daemon as segments named after the service, annotated with their ids.
    traced = [s for s in segments if s.get("annotations", {}).get("request_id") in ids]
    assert traced, segments
    assert {s["name"] for s in traced} == {"blog-api"}
    assert all(s["http"]["response"]["status"] == 200 for s in traced)

    # CloudWatch (EMF on stdout): the workers flushed on exit and the counts add up to what the server served.
    documents = [json.loads(line) for line in server.output().splitlines() if line.startswith('{"_aws"')]
    assert documents, server.output()[-3000:]
    assert {m["Namespace"] for d in documents for m in d["_aws"]["CloudWatchMetrics"]} == {"blog-api"}
    service_sets = {tuple(m["Dimensions"][0]) for d in documents for m in d["_aws"]["CloudWatchMetrics"]}
    assert service_sets == {("Service", "Environment")}
    assert {(d["Service"], d["Environment"]) for d in documents} == {("blog-api", "e2e")}
    assert sum(d["RequestCount"] for d in documents) == served


class OTLPReceiver:
    """An OTLP/HTTP traces receiver on 127.0.0.1 that decodes each protobuf request (opentelemetry-proto)."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        self.spans: list[tuple[str, dict[str, object], str]] = []
        spans = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource_spans in request.resource_spans:
                    for scope in resource_spans.scope_spans:
                        for span in scope.spans:
                            attributes = {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes}
                            spans.append((span.name, attributes, span.trace_id.hex()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def test_opentelemetry_is_switched_on_by_environment_variables(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(24)
    env = demo.server_environment(tmp_path, token)
    env["PYTHONPATH"] = ":".join(p for p in sys.path if p)
    demo.prepare_database(sys.executable, env, posts=5, static=False)
    receiver = OTLPReceiver()
    env.update({"ENABLE_OTEL": "true", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url})
    try:
        ids = {}
        with demo.running_server(sys.executable, env, tmp_path, workers=2) as server:
            for path in ("/api/v1/posts/", "/api/v1/posts/demo-post-1/"):
                status, headers, _ = demo.get(server.url + path)
                assert status == 200
                ids[headers["X-Request-ID"]] = path
            output = server.output
        # The workers flushed their spans on exit (gunicorn.conf.py imports django-prodkit's worker_exit hook).
        spans = {attributes.get("request_id"): (name, trace_id) for name, attributes, trace_id in receiver.spans}
    finally:
        receiver.close()
    assert spans[next(k for k, v in ids.items() if v == "/api/v1/posts/")][0] == "GET /api/v1/posts/"
    assert spans[next(k for k, v in ids.items() if v.endswith("demo-post-1/"))][0] == "GET /api/v1/posts/<slug:slug>/"
    # The access log lines carry the trace id of their request's span.
    lines = {event["request_id"]: event for event in access_log_events(output())}
    for request_id in ids:
        assert lines[request_id]["trace_id"] == spans[request_id][1]
