"""The load-test building blocks on their own: both response parsers, statistics, criteria and the text report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from io import StringIO

import pytest

from django_prodkit.loadtest.client import build_request
from django_prodkit.loadtest.config import LoadTestConfig, parse_url
from django_prodkit.loadtest.engine import Progress, RunResult
from django_prodkit.loadtest.parser import HttptoolsResponseParser, ParseError, PythonResponseParser, ResponseParser
from django_prodkit.loadtest.report_text import ProgressPrinter, render_report
from django_prodkit.loadtest.stats import Recorder, percentile, summarize
from django_prodkit.loadtest.thresholds import Thresholds, evaluate

Responses = list[tuple[int, bool]]
PARSERS: dict[str, Callable[..., ResponseParser]] = {
    "python": PythonResponseParser,
    "httptools": HttptoolsResponseParser,
}


def feed(kind: str, data: bytes, *, bytewise: bool = False, eof: bool = False) -> Responses:
    seen: Responses = []
    parser = PARSERS[kind](lambda status, keep: seen.append((status, keep)))
    for chunk in [data[i : i + 1] for i in range(len(data))] if bytewise else [data]:
        parser.feed(chunk)
    if eof:
        parser.feed_eof()
    return seen


@pytest.fixture(params=sorted(PARSERS))
def kind(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.mark.parametrize("bytewise", [False, True])
def test_content_length_and_chunked_responses_in_one_stream(kind: str, bytewise: bool) -> None:
    data = (
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n"
        b"HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    assert feed(kind, data, bytewise=bytewise) == [(200, True), (201, True), (503, False)]


def test_interim_and_bodiless_responses(kind: str) -> None:
    data = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 204 No Content\r\n\r\n"
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    )
    assert feed(kind, data) == [(204, True), (304, True), (200, True)]


def test_http_1_0_keep_alive_rules(kind: str) -> None:
    assert feed(kind, b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n") == [(200, False)]
    assert feed(kind, b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n") == [(200, True)]


def test_a_body_without_framing_ends_at_eof(kind: str) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npartial body"
    assert feed(kind, head) == []
    assert feed(kind, head, eof=True) == [(200, False)]


def test_a_truncated_framed_body_does_not_complete_at_eof(kind: str) -> None:
    assert feed(kind, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", eof=True) == []


@pytest.mark.parametrize(
    "data",
    [b"SMTP ready\r\n\r\n", b"HTTP/1.1 2x0 OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"],
)
def test_garbage_raises_parse_error(kind: str, data: bytes) -> None:
    with pytest.raises(ParseError):
        feed(kind, data)


def test_head_responses_have_no_body_in_the_python_parser() -> None:
    seen: Responses = []
    parser = PythonResponseParser(lambda status, keep: seen.append((status, keep)), head=True)
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    assert seen == [(200, True), (200, True)]


def test_invalid_chunk_size_is_a_parse_error() -> None:
    parser = PythonResponseParser(lambda status, keep: None)
    with pytest.raises(ParseError, match="chunk size"):
        parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")


def test_request_bytes_carry_host_headers_and_body() -> None:
    config = LoadTestConfig(
        target=parse_url("https://api.example.com:8443/base/"),
        users=1,
        requests=1,
        method="POST",
        headers=(("Authorization", "Bearer t"), ("Accept", "application/json")),
        body=b"{}",
    )
    request = build_request(config, "/items/?q=1")
    assert request.startswith(b"POST /base/items/?q=1 HTTP/1.1\r\nHost: api.example.com:8443\r\n")
    assert b"Authorization: Bearer t\r\n" in request
    assert request.count(b"Accept:") == 1
    assert request.endswith(b"Content-Length: 2\r\n\r\n{}")


def test_percentiles_are_nearest_rank_over_every_sample() -> None:
    ordered = [float(v) for v in range(1, 101)]
    assert [percentile(ordered, p) for p in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert percentile([7.0], 99) == 7.0


def recorded(latencies_ms: list[float], statuses: list[int], errors: dict[str, int]) -> Recorder:
    recorder = Recorder()
    for i, (latency, status) in enumerate(zip(latencies_ms, statuses, strict=True)):
        recorder.latencies.append(latency / 1000)
        recorder.ends.append(recorder.started + i * 0.5)
        recorder.statuses[status] = recorder.statuses.get(status, 0) + 1
    for kind, count in errors.items():
        for _ in range(count):
            recorder.record_error(kind, recorder.started + 0.1)
    recorder.finished = recorder.started + 2.0
    return recorder


def result_of(recorder: Recorder, interrupted: bool = False) -> RunResult:
    config = LoadTestConfig(target=parse_url("http://127.0.0.1:9"), users=2, requests=3)
    summary = summarize(recorder, frozenset(range(200, 400)))
    return RunResult(config, summary, datetime.now(timezone.utc), 0, interrupted, "python", "asyncio")


def test_summary_totals_errors_and_timeline() -> None:
    summary = result_of(recorded([10, 20, 30, 40], [200, 200, 500, 302], {"timeout": 1})).summary
    assert (summary.requests, summary.successful, summary.failed) == (5, 3, 2)
    assert summary.errors == {"http_500": 1, "timeout": 1}
    assert summary.requests_per_second == 2.5
    assert summary.latency is not None
    assert (summary.latency.min, summary.latency.max, summary.latency.avg) == (10, 40, 25)
    assert summary.latency.median == 20
    assert [(p.second, p.requests) for p in summary.timeline] == [(0, 3), (1, 2)]
    assert sum(count for _, _, count in summary.histogram) == 4


def test_the_text_report_has_the_documented_layout() -> None:
    result = result_of(recorded([100.0] * 4 + [250.0], [200] * 5, {"connection_refused": 1}))
    criteria = evaluate(result.summary, Thresholds(p95_ms=200))
    text = render_report(result, criteria)
    assert "  Total requests: 6\n  Successful: 5 (83.3%)\n  Failed: 1 (16.7%)\n  Total time: 2.00s\n" in text
    assert "  Min: 100.00ms  Max: 250.00ms  Avg: 130.00ms  Median: 100.00ms  P95: 250.00ms  P99: 250.00ms" in text
    assert "  connection refused: 1" in text
    assert "  Success rate: 83.3% FAIL (target: >=99%)" in text
    assert "  Avg response: 130.00ms PASS (target: <200ms)" in text
    assert "  Throughput: 3.00 req/s FAIL (target: >50 req/s)" in text
    assert "  P95 response: 250.00ms FAIL (target: <200ms)" in text
    assert "\u2705 PASS" in render_report(result, criteria, utf8=True)
    assert "Interrupted" in render_report(result_of(Recorder(), interrupted=True), criteria)


def test_progress_is_a_rewritten_line_on_a_terminal_and_plain_lines_elsewhere() -> None:
    snapshot = Progress("test", 50, 1, 2.0, 100)
    plain, tty = StringIO(), StringIO()
    ProgressPrinter(plain, tty=False)(snapshot)
    printer = ProgressPrinter(tty, tty=True)
    printer(snapshot)
    printer.finish()
    assert plain.getvalue() == "test: 50/100 requests, 25.0 req/s, 1 failed, 2.0s\n"
    assert tty.getvalue().startswith("\r\x1b[2K[" + "#" * 15 + "." * 15 + "] test: 50/100")
    assert tty.getvalue().endswith("\r\x1b[2K")
