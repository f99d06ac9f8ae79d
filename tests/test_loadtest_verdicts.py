"""Verdicts that mean what they say: redirects, warm-up and dropped requests in the abort check, run identity without
secrets, finite numbers, hostile merge inputs, segments judged by their share, the server's own view beside the
client's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.loadtest_servers import serving
from tests.test_loadtest_command import loadtest, read_json

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

SECRET_HEADER = "X-Api-Key"


def test_a_server_that_redirects_everything_fails_with_the_redirects_and_the_https_hint() -> None:
    with serving("redirect") as server:
        status, out, err = loadtest("2", "10", "--url", server.url, "--path", "/api/")
        passing, _, _ = loadtest("2", "10", "--url", server.url, "--path", "/api/", "--expect-status", "301")
    assert status == 3, out
    assert "Success rate: 0.0% FAIL" in out
    assert "Redirects: 20 responses were 3xx, counted as failed" in out
    # The Location is named without its query string (it may carry a token), with the hint for http -> https.
    assert f"-> https://127.0.0.1:{server.server_address[1]}/api/: 20" in out
    assert "secret" not in out + err
    assert "X-Forwarded-Proto: https" in out
    assert "behind_proxy=True" in out
    assert "20 responses were redirects" in err
    assert "X-Forwarded-Proto" in err
    assert passing == 0


def test_redirects_are_in_the_json_report(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    with serving("redirect") as server:
        loadtest("1", "3", "--url", server.url, "--json", str(report))
    data = read_json(report)
    assert data["errors"] == {"http_301": 3}
    assert data["redirects"] == {f"https://127.0.0.1:{server.server_address[1]}/": 3}


def test_a_slow_warm_up_does_not_abort_a_fast_run() -> None:
    # The 4 warm-up requests take 300 ms; the 40 measured ones are fast. Before the fix the abort check judged the
    # warm-up's responses and stopped the run with nothing measured.
    with serving(slow_first=4, delay=0.3) as server:
        args = ["2", "20", "--url", server.url, "--warmup", "4", "--target-rps", "1", "--target-avg-ms", "1e9"]
        status, out, err = loadtest(*args, "--threshold", "p99<250", "--abort-on-fail")
        seen = server.count
    assert status == 0, out + err
    assert "Total requests: 40" in out
    assert seen == 44


def test_dropped_requests_count_for_the_abort_check(tmp_path: Path) -> None:
    # One connection to a server that answers 20 requests a second, scheduled at 200 a second for 4 s: most
    # requests are dropped. The abort check counts them as the final verdict does, and stops the run early.
    report = tmp_path / "r.json"
    with serving("slow", delay=0.05) as server:
        args = ["1", "--url", server.url, "--rate", "200", "--duration", "4", "--timeout", "0.2", "--target-rps", "1"]
        status, out, err = loadtest(*args, "--threshold", "error_rate<10%", "--abort-on-fail", "--json", str(report))
    data = read_json(report)
    assert status == 3, out
    assert "aborted: a threshold could no longer be met" in err
    assert data["stopped"] == "threshold"
    assert data["totals"]["dropped"] > 0
    # Stopped long before the 4 s schedule was through.
    assert data["totals"]["requests"] < 0.5 * 200 * 4


def run_with_key(tmp_path: Path, url: str, key: str, *extra: str) -> dict[str, Any]:
    report = tmp_path / f"{key}-{'-'.join(extra).replace('/', '_')}.json"
    args = ["4", "5", "--url", url, "--header", f"{SECRET_HEADER}: {key}", "--body", f"token={key}", "--method", "POST"]
    status, _, err = loadtest(*args, "--target-rps", "1", "--target-avg-ms", "1e9", "--json", str(report), *extra)
    assert status == 0, err
    return read_json(report)


def test_reports_do_not_reveal_header_values_or_bodies(tmp_path: Path) -> None:
    with serving() as server:
        first = run_with_key(tmp_path, server.url, "123456")
        second = run_with_key(tmp_path, server.url, "654321")
    # Nothing in a report depends on the secret: the run identity is the same, so trying every one of 10**6
    # candidates gives 10**6 equally good answers.
    assert first["run"]["id"] == second["run"]["id"]
    assert first["config"] == second["config"]
    for data in (first, second):
        text = json.dumps(data)
        assert "123456" not in text
        assert "654321" not in text


def test_merge_pairs_segments_by_run_identity_and_by_run_id(tmp_path: Path) -> None:
    merged = tmp_path / "merged.json"
    with serving() as server:
        one = run_with_key(tmp_path, server.url, "123456", "--segment", "1/2")
        two = run_with_key(tmp_path, server.url, "123456", "--segment", "2/2")
        tagged = run_with_key(tmp_path, server.url, "123456", "--segment", "2/2", "--run-id", "nightly-42")
    assert one["run"]["id"] == two["run"]["id"] != tagged["run"]["id"] == "nightly-42"
    files = sorted(str(path) for path in tmp_path.glob("123456-*.json") if "nightly" not in path.name)
    status, out, err = loadtest("--merge", *files, "--target-rps", "1", "--target-avg-ms", "1e9", "--json", str(merged))
    assert status == 0, out + err
    assert read_json(merged)["totals"]["requests"] == 20
    first = next(str(path) for path in tmp_path.glob("123456-*1_2.json"))
    other = next(str(path) for path in tmp_path.glob("*nightly*.json"))
    status, _, err = loadtest("--merge", first, other)
    assert status == 2
    assert "different run" in err


def test_a_segment_is_judged_by_its_share_of_the_throughput_target(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    with serving() as server:
        # Whole-run target 1e6 req/s: 4 users' segment 1/4 (1 user) is judged against a quarter of it.
        args = ["4", "5", "--url", server.url, "--segment", "1/4", "--target-rps", "1000000", "--json", str(report)]
        loadtest(*args)
    criteria = {c["metric"]: c for c in read_json(report)["criteria"]}
    assert criteria["rps"]["target"] == 250_000
    assert criteria["rps"]["name"] == "Throughput (segment 1/4's share of >1e+06 req/s)"


def test_server_metrics_bad_urls_and_tokens_in_urls_exit_2() -> None:
    status, _, err = loadtest("1", "1", "--server-metrics", "ftp://x/")
    assert status == 2
    assert "--server-metrics: expected the http(s) URL" in err
    status, _, err = loadtest("1", "1", "--server-metrics", "https://user:pw@example.com/api/v1/metrics/")
    assert status == 2
    assert "PRODKIT_LOADTEST_METRICS_TOKEN" in err
    assert "pw@" not in err


def test_an_unreachable_metrics_endpoint_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODKIT_LOADTEST_METRICS_TOKEN", "sekret-token")
    with serving() as server:
        status, out, _ = loadtest(
            "1", "2", "--url", server.url, "--target-rps", "1", "--target-avg-ms", "1e9", "--server-metrics", server.url
        )
    assert status == 0
    # The counting server answers anything with "ok": not the kit's metrics, said so, and the run goes on.
    assert f"Not available: {server.url} answered no Content-Type: is it the kit's metrics URL?" in out
    assert "sekret-token" not in out
