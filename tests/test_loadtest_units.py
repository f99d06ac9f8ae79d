"""The load-test building blocks on their own: both response parsers, statistics, criteria and the text report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from io import StringIO

import pytest

from django_prodkit.loadtest.charts import nice_ticks
from django_prodkit.loadtest.client import build_request
from django_prodkit.loadtest.config import LoadTestConfig, RequestSpec, Stage, parse_url
from django_prodkit.loadtest.histogram import Histogram, bucket_bounds, bucket_of
from django_prodkit.loadtest.outcome import Progress, RunResult
from django_prodkit.loadtest.parser import HttptoolsResponseParser, ParseError, PythonResponseParser, ResponseParser
from django_prodkit.loadtest.recorder import Recorder
from django_prodkit.loadtest.report_text import ProgressPrinter, render_report
from django_prodkit.loadtest.results import Results, build, merge
from django_prodkit.loadtest.share import Share, coverage_problem, parse_segment
from django_prodkit.loadtest.sources import Mix, schedule
from django_prodkit.loadtest.thresholds import Criterion, Targets, ThresholdError, evaluate, parse_threshold

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
    config = LoadTestConfig(target=parse_url("https://api.example.com:8443/base/"), users=1, requests=1)
    spec = RequestSpec(
        "/items/?q=1",
        method="POST",
        headers=(("Authorization", "Bearer t"), ("Accept", "application/json")),
        body=b"{}",
    )
    request = build_request(config, spec)
    assert request.startswith(b"POST /base/items/?q=1 HTTP/1.1\r\nHost: api.example.com:8443\r\n")
    assert b"Authorization: Bearer t\r\n" in request
    assert request.count(b"Accept:") == 1
    assert request.endswith(b"Content-Length: 2\r\n\r\n{}")


def test_histogram_buckets_are_contiguous_and_within_1_6_percent() -> None:
    previous = -1
    for us in [*range(0, 5000), *range(5000, 10**7, 997)]:
        index = bucket_of(us)
        low, high = bucket_bounds(index)
        assert low <= us < high
        assert index >= previous
        assert high - low <= max(1, low / 64)
        previous = index


def test_histogram_percentiles_and_exact_merge() -> None:
    first, second, both = Histogram(), Histogram(), Histogram()
    for value in range(1000, 101_000, 1000):
        (first if value % 3 else second).add(value)
        both.add(value)
    assert first != both
    first.merge(second)
    assert first == both
    assert Histogram.from_json(both.to_json()) == both
    assert (both.min_us, both.max_us, both.count, both.sum_us) == (1000, 100_000, 100, 5_050_000)
    assert both.percentile(100) == 100.0
    assert abs(both.percentile(50) - 50.0) <= 50.0 / 64
    assert abs(both.percentile(99) - 99.0) <= 99.0 / 64


def test_a_histogram_that_does_not_add_up_is_rejected() -> None:
    data = Histogram().to_json()
    data["count"] = 3
    with pytest.raises(ValueError, match="do not add up"):
        Histogram.from_json(data)


def recorded(latencies_ms: list[float], statuses: list[int], errors: dict[str, int]) -> Recorder:
    recorder = Recorder()
    for i, (latency, status) in enumerate(zip(latencies_ms, statuses, strict=True)):
        recorder.record_response(i % 2, status, latency / 1000, recorder.started + i * 0.5)
    for kind, count in errors.items():
        for _ in range(count):
            recorder.record_error(0, kind, recorder.started + 0.1)
    recorder.finished = recorder.started + 2.0
    return recorder


SPECS = (RequestSpec("/a"), RequestSpec("/b", name="bee"))


def result_of(recorder: Recorder, stopped: str | None = None) -> RunResult:
    config = LoadTestConfig(target=parse_url("http://127.0.0.1:9"), users=2, requests=3, specs=SPECS)
    results = build(recorder, SPECS, recorder.started)
    return RunResult(config, results, datetime.now(timezone.utc), stopped, "python", "asyncio")


def test_results_totals_errors_per_name_and_timeline() -> None:
    results = result_of(recorded([10, 20, 30, 40], [200, 200, 500, 302], {"timeout": 1})).results
    total = results.total
    # A 302 is not a success unless expected: the page under test was not reached.
    assert (total.requests, total.successful, total.failed) == (5, 2, 3)
    assert total.failures() == {"http_302": 1, "http_500": 1, "timeout": 1}
    assert results.requests_per_second == 2.5
    assert (total.latency.min_us, total.latency.max_us, total.latency.sum_us) == (10_000, 40_000, 100_000)
    assert {name: tally.requests for name, tally in results.by_name.items()} == {"/a": 3, "bee": 2}
    assert results.by_name["/a"].failures() == {"http_500": 1, "timeout": 1}
    assert [second.requests for second in results.timeline] == [3, 2]
    assert Results.from_json(results.to_json()) == results


def test_merge_adds_every_count_and_bucket() -> None:
    one = result_of(recorded([10, 20, 30], [200, 503, 200], {"timeout": 2})).results
    two = result_of(recorded([15, 25], [200, 200], {})).results
    merged = merge([one, two])
    assert merged.total.requests == one.total.requests + two.total.requests == 7
    assert merged.total.failures() == {"http_503": 1, "timeout": 2}
    assert merged.total.latency.count == 5
    assert merged.total.latency.buckets == {
        k: one.total.latency.buckets.get(k, 0) + two.total.latency.buckets.get(k, 0)
        for k in {*one.total.latency.buckets, *two.total.latency.buckets}
    }
    assert merged.by_name["/a"].requests == one.by_name["/a"].requests + two.by_name["/a"].requests
    assert merged.duration == max(one.duration, two.duration)


def test_the_text_report_has_the_documented_layout() -> None:
    result = result_of(recorded([100.0] * 4 + [250.0], [200] * 5, {"connection_refused": 1}))
    verdicts = evaluate(result.results, Targets(p95_ms=200).criteria())
    text = render_report(result, verdicts)
    assert "  Total requests: 6\n  Successful: 5 (83.3%)\n  Failed: 1 (16.7%)\n  Total time: 2.00s\n" in text
    assert "  Min: 100.00ms  Max: 250.00ms  Avg: 130.00ms  Median: 100.00ms  P95: 250.00ms  P99: 250.00ms" in text
    assert "  connection refused: 1" in text
    assert "  bee: 2 requests, 0 failed (0.0%)\n    Status codes: 200: 2\n" in text
    assert "  Success rate: 83.3% FAIL (target: >=99%)" in text
    assert "  Avg response: 130.00ms PASS (target: <200ms)" in text
    assert "  Throughput: 3.00 req/s FAIL (target: >50 req/s)" in text
    assert "  P95 response: 250.00ms FAIL (target: <200ms)" in text
    assert "\u2705 PASS" in render_report(result, verdicts, utf8=True)
    assert "Interrupted" in render_report(result_of(Recorder(), stopped="interrupted"), verdicts)
    assert "deadline" in render_report(result_of(Recorder(), stopped="deadline"), verdicts)


def test_progress_shows_the_total_and_the_time_left() -> None:
    snapshot = Progress("test", 50, 1, 2.0, 100)
    plain, tty = StringIO(), StringIO()
    ProgressPrinter(plain, tty=False)(snapshot)
    printer = ProgressPrinter(tty, tty=True)
    printer(snapshot)
    printer(Progress("test", 10, 0, 3.0, None, duration=10.0))
    printer.finish()
    assert plain.getvalue() == "test: 50/100 requests, 25.0 req/s, 1 failed, 2.0s, ETA 0:02\n"
    assert tty.getvalue().startswith("\r\x1b[2K[" + "#" * 15 + "." * 15 + "] test: 50/100")
    assert "[" + "#" * 9 + "." * 21 + "] test: 10 requests, 3.3 req/s, 0 failed, 3.0s, ETA 0:07" in tty.getvalue()
    assert tty.getvalue().endswith("\r\x1b[2K")


@pytest.mark.parametrize(
    ("text", "metric", "comparison", "target"),
    [
        ("p95<300", "p95", "<", 300.0),
        ("p(99.9) <= 1.5s", "p99.9", "<=", 1500.0),
        ("avg<200ms", "avg", "<", 200.0),
        ("med<10", "median", "<", 10.0),
        ("error_rate<1%", "error_rate", "<", 1.0),
        ("error_rate<0.01", "error_rate", "<", 1.0),
        ("success_rate>=99.5%", "success_rate", ">=", 99.5),
        ("rps>50", "rps", ">", 50.0),
    ],
)
def test_k6_style_thresholds(text: str, metric: str, comparison: str, target: float) -> None:
    criterion = parse_threshold(text)
    assert (criterion.metric, criterion.comparison, criterion.target) == (metric, comparison, target)


@pytest.mark.parametrize("text", ["p95<", "p95<<3", "p101<3", "rps>5ms", "avg<5%", "p95<3\n", "latency<3"])
def test_bad_thresholds_are_rejected(text: str) -> None:
    with pytest.raises(ThresholdError):
        parse_threshold(text)


def test_a_threshold_is_lost_once_the_rest_of_the_run_cannot_save_it() -> None:
    errors = Criterion("error_rate", "<", 1.0)
    assert not errors.lost(failed=10, over=0, expected=1000)
    assert errors.lost(failed=11, over=0, expected=1000)
    slow = parse_threshold("p95<300")
    assert not slow.lost(failed=0, over=50, expected=1000)
    assert slow.lost(failed=0, over=51, expected=1000)
    assert not parse_threshold("avg<1").lost(failed=10**6, over=10**6, expected=1)


def test_segments_are_disjoint_stripes_that_cover_the_run() -> None:
    shares = [parse_segment(f"{i}/3") for i in (1, 2, 3)]
    assert sum(share.count(100) for share in shares) == 100
    assert all(sum(share.includes(k) for share in shares) == 1 for k in range(30))
    processes = [shares[1].split(2, 0), shares[1].split(2, 1)]
    assert {k for k in range(60) if any(p.includes(k) for p in processes)} == {k for k in range(60) if k % 3 == 1}
    assert coverage_problem(shares) is None
    assert coverage_problem([shares[0], *processes, shares[2]]) is None
    assert coverage_problem([shares[0], shares[0], shares[1], shares[2]]) == "overlapping segments: 1/3 and 1/3"
    assert "missing segment" in (coverage_problem(shares[:2]) or "")
    assert coverage_problem([Share(0, 2, 2), Share(0, 3, 3)]) is not None


def test_weighted_mix_is_proportional_and_the_schedule_ramps() -> None:
    mix = Mix([3.0, 1.0])
    picks = [mix.pick(k) for k in range(4000)]
    assert abs(picks.count(0) - 3000) <= 10
    config = LoadTestConfig(
        target=parse_url("http://127.0.0.1:9"), users=1, rate=10.0, stages=(Stage(2.0, 30.0), Stage(1.0, 30.0))
    )
    times = [offset for offset, _ in schedule(config)]
    # 10 -> 30 req/s over 2 s is 40 requests, then 30 more in the last second.
    assert len(times) == 70
    assert times == sorted(times)
    first_second = sum(t < 1.0 for t in times)
    assert first_second < sum(1.0 <= t < 2.0 for t in times) < sum(t >= 2.0 for t in times)


def test_axis_ticks_are_round_numbers() -> None:
    assert nice_ticks(87.0) == [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
    assert nice_ticks(3.3) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert nice_ticks(0.0) == [0.0, 1.0]
