"""Units behind trustworthy verdicts: exact percentile ranks, a run identity without secrets, the HTML report's
stages and ticks, and the server's view (exposition parsing, routes, comparison)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from django_prodkit.loadtest.charts import log_ticks
from django_prodkit.loadtest.config import LoadTestConfig, RequestSpec, Stage, parse_url
from django_prodkit.loadtest.histogram import Histogram, bucket_bounds, bucket_of
from django_prodkit.loadtest.outcome import RunResult
from django_prodkit.loadtest.report_html import render_html
from django_prodkit.loadtest.results import Results, Tally
from django_prodkit.loadtest.server_metrics import Reading, earliest_and_latest, parse_exposition
from django_prodkit.loadtest.server_view import compare, route_of_path, server_percentile

PERCENTILES = [50.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0, 0.1, 33.3]


def nearest_rank(values: list[int], pct: float) -> int:
    """The textbook nearest-rank percentile of a sorted list, in exact decimal arithmetic."""
    ordered = sorted(values)
    rank = max(1, -(-round(pct * 1000) * len(ordered) // 100_000))
    return ordered[rank - 1]


def test_p99_9_of_exactly_1000_samples_is_not_the_maximum() -> None:
    histogram = Histogram()
    histogram.add(1000, 999)
    histogram.add(5_000_000)
    # 99.9 / 100 * 1000 is 999.0000000000001 in floats: the 1000th sample, 5 s. Its rank is 999: 1 ms (the middle
    # of its bucket, 1000-1008 us).
    assert 1.0 <= histogram.percentile(99.9) < 1.008
    assert histogram.percentile(100) == 5000.0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=400),
    st.sampled_from(PERCENTILES) | st.floats(min_value=0.001, max_value=100.0),
)
def test_a_percentile_is_in_the_bucket_of_the_sorted_lists_nearest_rank(values: list[int], pct: float) -> None:
    pct = round(pct, 3)
    histogram = Histogram()
    for value in values:
        histogram.add(value)
    expected = nearest_rank(values, pct)
    got_us = histogram.percentile(pct) * 1000.0
    if expected < 128 or expected == min(values) == max(values) or pct == 100.0:
        # Exact where the histogram knows the value: below 128 us (a bucket per microsecond) and the maximum.
        assert math.isclose(got_us, expected, abs_tol=1e-6)
    low, high = bucket_bounds(bucket_of(expected))
    low, high = max(low, min(values)), min(high, max(values) + 1)
    assert low - 1e-6 <= got_us <= high + 1e-6, (expected, got_us)


def config(**changes: object) -> LoadTestConfig:
    base = LoadTestConfig(target=parse_url("http://127.0.0.1:9"), users=4, requests=5)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_secret_header_value_cannot_be_brute_forced_from_the_run_id() -> None:
    def run_id(key: str) -> str:
        spec = RequestSpec("/", method="POST", headers=(("X-Api-Key", key),), body=f"key={key}".encode())
        return config(specs=(spec,)).run_id

    published = run_id("123456")
    # Every candidate gives the published id: trying 10**6 of them singles none out (a sample of them here).
    candidates = [f"{n:06d}" for n in range(0, 10**6, 997)]
    assert {run_id(candidate) for candidate in candidates} == {published}
    # What the id is made of: names and shapes, a change of which does change it.
    named = RequestSpec("/", method="POST", headers=(("X-Other", "123456"),), body=b"key=123456")
    assert config(specs=(named,)).run_id != published
    assert config(given_run_id="nightly-7").run_id == "nightly-7"


def html_of(cfg: LoadTestConfig, tally: Tally) -> str:
    results = Results(total=tally, by_name={"/": tally}, duration=1.0)
    return render_html(RunResult(cfg, results, datetime.now(timezone.utc), None, "python", "asyncio"), [])


def test_the_html_report_shows_stages_as_stages_with_round_histogram_ticks() -> None:
    tally = Tally(requests=3, successful=3, statuses={200: 3})
    for us in (700, 3_100, 41_000):
        tally.latency.add(us)
    stages = (Stage(2.0, 8.0), Stage(2.0, 16.0))
    text = html_of(config(users=8, requests=None, duration=None, stages=stages), tally)
    assert "8 -&gt; 8 -&gt; 16 users" in text
    assert " 8 users " not in text
    labels = [label for label in text.split('text-anchor="middle">')[1:] if not label.startswith(("0s", "1s"))]
    ticks = [label.split("<", 1)[0] for label in labels]
    assert {"1", "10"} <= set(ticks)
    assert all(float(t) / 10 ** math.floor(math.log10(float(t))) in (1, 2, 5) for t in ticks if t[0].isdigit())


def test_log_ticks_are_round_and_few() -> None:
    assert log_ticks(0.05, 3.2) == [0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
    assert log_ticks(0.9, 5000) == [1.0, 10.0, 100.0, 1000.0]
    assert len(log_ticks(0.001, 10**6)) <= 8
    assert log_ticks(2.0, 1.0) == []


EXPOSITION = """\
# TYPE prodkit_http_requests counter
prodkit_http_requests_total{{method="GET",route="/api/v1/posts/",status="200"}} {posts}
prodkit_http_requests_total{{method="GET",route="/api/v1/posts/<slug:slug>/",status="200"}} {post}
prodkit_http_requests_total{{method="GET",route="/api/v1/healthcheck/",status="200"}} {health}
# TYPE prodkit_http_request_duration_seconds histogram
prodkit_http_request_duration_seconds_bucket{{le="0.001",method="GET",route="/api/v1/posts/"}} 0
prodkit_http_request_duration_seconds_bucket{{le="0.004",method="GET",route="/api/v1/posts/"}} {posts}
prodkit_http_request_duration_seconds_bucket{{le="+Inf",method="GET",route="/api/v1/posts/"}} {posts}
"""


def test_routes_are_matched_like_django_resolves_them() -> None:
    routes = ["/api/v1/posts/", "/api/v1/posts/<slug:slug>/", "/api/v1/<path:rest>", "/^legacy/(?P<n>[0-9]+)/$"]
    assert route_of_path("/api/v1/posts/", routes) == "/api/v1/posts/"
    assert route_of_path("/api/v1/posts/demo-post-1/?page=2", routes) == "/api/v1/posts/<slug:slug>/"
    assert route_of_path("/api/v1/other/x", routes) == "/api/v1/<path:rest>"
    assert route_of_path("/legacy/42/", routes) == "/^legacy/(?P<n>[0-9]+)/$"
    assert route_of_path("/nowhere", routes) == "<unmatched>"


def test_the_comparison_counts_per_route_and_flags_what_the_server_never_saw() -> None:
    before = parse_exposition(EXPOSITION.format(posts=10, post=5, health=1))
    after = parse_exposition(EXPOSITION.format(posts=50, post=5, health=3))
    specs = (RequestSpec("/api/v1/posts/"), RequestSpec("/api/v1/posts/demo/"))
    tallies = {"/api/v1/posts/": Tally(40, 40, {200: 40}), "/api/v1/posts/demo/": Tally(7, 7, {200: 7})}
    results = Results(by_name=tallies)
    results.by_name["/api/v1/posts/"].latency.add(3_500, 40)
    view = compare(config(specs=specs), results, before, after)
    rows = {row["route"]: row for row in view["routes"]}
    assert rows["/api/v1/posts/"]["server_counted"] == rows["/api/v1/posts/"]["client_answered"] == 40
    assert rows["/api/v1/posts/"]["server_ms"]["p99"] == 2.0  # the geometric middle of the 1-4 ms bucket
    assert rows["/api/v1/posts/<slug:slug>/"]["server_counted"] == 0
    assert view["other_routes"] == {"GET /api/v1/healthcheck/": 2}
    assert len(view["mismatches"]) == 1
    assert "GET /api/v1/posts/<slug:slug>/: the client had 7 answers the server never counted" in view["mismatches"][0]


def test_a_route_the_server_never_counted_is_named_by_its_path() -> None:
    reading = parse_exposition(EXPOSITION.format(posts=1, post=1, health=1))
    view = compare(config(specs=(RequestSpec("/api/v1/tags/?page=2"),)), Results(by_name={}), reading, reading)
    assert [(row["route"], row["server_counted"]) for row in view["routes"]] == [("/api/v1/tags/", 0)]


def test_segments_readings_combine_into_before_the_first_and_after_the_last() -> None:
    first = (Reading({("GET", "/a"): 10.0}), Reading({("GET", "/a"): 30.0}))
    second = (Reading({("GET", "/a"): 12.0}), Reading({("GET", "/a"): 41.0}))
    before, after = earliest_and_latest([first, second])
    assert (before.counts, after.counts) == ({("GET", "/a"): 10.0}, {("GET", "/a"): 41.0})
    assert Reading.from_json(after.to_json()).counts == after.counts


def test_server_percentiles_from_cumulative_buckets() -> None:
    assert server_percentile({}, 50) is None
    assert server_percentile({0.01: 0.0, 0.1: 10.0, math.inf: 10.0}, 99.0) == round(math.sqrt(0.001) * 1000, 3)
    assert server_percentile({0.01: 5.0, math.inf: 10.0}, 99.0) == 10.0
