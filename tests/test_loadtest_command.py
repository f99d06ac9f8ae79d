"""``manage.py loadtest`` against real servers on 127.0.0.1: counts, criteria, errors and exit codes."""

from __future__ import annotations

import json
import ssl
import subprocess
from io import StringIO
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

import django_prodkit
from django_prodkit.loadtest import parser as parser_module
from django_prodkit.loadtest.config import LoadTestConfig, parse_url
from django_prodkit.loadtest.report_json import SCHEMA_PATH
from django_prodkit.loadtest.runner import run_load_test
from tests.loadtest_servers import serving
from tests.tools import require_tool

# Every test here starts a server and an event loop: a hang fails the test, it does not eat CI's time.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def loadtest(*args: str) -> tuple[int, str, str]:
    """Run the command; return its exit status and its output."""
    out, err = StringIO(), StringIO()
    try:
        call_command("loadtest", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), f"{err.getvalue()}{exc}"
    return 0, out.getvalue(), err.getvalue()


def read_json(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def test_counts_reported_equal_what_the_server_saw(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    with serving() as server:
        args = ["5", "12", "--url", server.url, "--path", "/a/", "--path", "/b/?q=1", "--warmup", "7"]
        status, out, _ = loadtest(*args, "--json", str(report))
        seen, paths = server.count, dict(server.paths)
    data = read_json(report)
    assert status == 0
    assert data["totals"]["requests"] == 60
    assert data["totals"]["warmup_requests"] == 7
    assert seen == 60 + 7
    # Each user cycles through the paths from its own offset: 30 + 30 measured, 4 + 3 warm-up.
    assert paths == {"/a/": 34, "/b/?q=1": 33}
    assert data["status_codes"] == {"200": 60}
    assert {name: figures["requests"] for name, figures in data["by_request"].items()} == {"/a/": 30, "/b/?q=1": 30}
    assert "  /b/?q=1: 30 requests, 0 failed (0.0%)" in out
    assert f"JSON report written to {report}" in out
    assert "Total requests: 60" in out
    assert "Successful: 60 (100.0%)" in out
    assert "Success rate: 100.0% PASS (target: >=99%)" in out


def test_failing_statuses_fail_the_success_rate_with_exit_3() -> None:
    with serving(status=503) as server:
        status, out, err = loadtest("2", "5", "--url", server.url)
        assert server.count == 10
    assert status == 3
    assert "Failed: 10 (100.0%)" in out
    assert "HTTP 503: 10" in out
    assert "Success rate: 0.0% FAIL" in out
    assert "load test failed: Success rate" in err


def test_expect_status_makes_a_status_a_success() -> None:
    with serving(status=404) as server:
        status, out, _ = loadtest("2", "5", "--url", server.url, "--expect-status", "404", "--target-rps", "1")
    assert status == 0, out
    assert "Successful: 10 (100.0%)" in out


def test_an_unreachable_target_rps_fails_with_exit_3() -> None:
    with serving() as server:
        status, out, _ = loadtest("1", "3", "--url", server.url, "--target-rps", "1e9", "--target-p99-ms", "1e6")
    assert status == 3
    assert "FAIL (target: >1e+09 req/s)" in out
    assert "P99 response:" in out


@pytest.mark.parametrize("mode", ["close", "close-header"])
def test_a_server_closing_keep_alive_connections_loses_no_request(mode: str) -> None:
    with serving(mode, close_every=3) as server:
        status, out, _ = loadtest("4", "15", "--url", server.url)
        seen = server.count
    assert status == 0, out
    assert seen == 60
    assert "Successful: 60 (100.0%)" in out


def test_timeouts_are_counted_by_kind(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    with serving("hang") as server:
        status, out, _ = loadtest("2", "2", "--url", server.url, "--timeout", "0.3", "--json", str(report))
    data = read_json(report)
    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text()), format_checker=jsonschema.FormatChecker())
    assert (data["errors"], data["totals"]["latency_ms"], data["passed"]) == ({"timeout": 4}, None, False)
    assert status == 3
    assert "timeout: 4" in out
    assert "no responses" in out
    assert "Avg response: n/a FAIL" in out


def test_a_refused_port_prevents_the_test_with_exit_1() -> None:
    with serving() as server:
        url = server.url
    status, _, err = loadtest("1", "1", "--url", url)
    assert status == 1
    assert f"cannot connect to {url}: connection refused" in err


def test_an_unknown_host_prevents_the_test_with_exit_1() -> None:
    status, _, err = loadtest("1", "1", "--url", "http://no-such-host.invalid")
    assert status == 1
    assert "cannot resolve 'no-such-host.invalid'" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["0", "10"], "USERS must be at least 1, got 0"),
        (["5", "-3"], "REQUESTS must be at least 1, got -3"),
        (["5"], "give REQUESTS (per user), --duration SECONDS or stages"),
        ([], "give USERS"),
        (["5", "1", "--duration", "-1"], "--duration must be a positive number"),
        (["5", "1", "--rate", "0"], "--rate must be a positive number"),
        (["5", "1", "--warmup", "-1"], "--warmup must be 0 or more"),
        (["5", "1", "--url", "localhost:8000"], "needs an http:// or https:// scheme"),
        (["5", "1", "--path", "api/"], "a path starts with '/'"),
        (["5", "1", "--path", "/a\x01b"], "no spaces or control characters"),
        (["5", "1", "--path", "/a\n"], "no spaces or control characters"),
        (["5", "1", "--method", "GET\n"], "is not a valid HTTP method"),
        (["5", "1", "--header", "X-A\n: 1"], "expected 'Name: value'"),
        (["5", "1", "--header", "X-A: 1\x00"], "the value must be one line"),
        (["5", "1", "--json", "/nonexistent-dir/r.json"], "--json /nonexistent-dir/r.json: cannot be written"),
        (["5", "1", "--html", "/"], "--html /: cannot be written"),
        (["5", "1", "--processes", "0"], "--processes '0': a number from 1 to 1024, or auto"),
        (["5", "1", "--processes", "100000"], "--processes '100000': a number from 1 to 1024, or auto"),
        (["5", "1", "--segment", "3/2"], "I must be between 1 and N"),
        (["5", "1", "--segment", "1/2\n"], "expected I/N"),
        (["5", "1", "--start-at", "soon"], "--start-at 'soon'"),
        (["5", "1", "--threshold", "p95<<3"], "--threshold: threshold 'p95<<3'"),
        (["5", "1", "--threshold", "nope:p95<3"], "no request is named 'nope'"),
        (["5", "1", "--header", "no colon"], "expected 'Name: value'"),
        (["5", "1", "--expect-status", "42"], "a status code is between 100 and 599"),
        (["5", "1", "--target-success-rate", "120"], "between 0 and 100"),
        (["5", "1", "--serve", "--url", "http://127.0.0.1:1"], "leave out --url"),
        (["five", "1"], "invalid int value: 'five'"),
        # Numbers are finite and bounded: inf and nan used to crash with a traceback.
        (["5", "1", "--rate", "inf"], "argument --rate: expected a finite number, got 'inf'"),
        (["5", "1", "--duration", "inf"], "argument --duration: expected a finite number, got 'inf'"),
        (["5", "1", "--timeout", "nan"], "argument --timeout: expected a finite number, got 'nan'"),
        (["5", "1", "--timeout", "1e400"], "argument --timeout: expected a finite number"),
        (["5", "1", "--target-avg-ms", "nan"], "argument --target-avg-ms: expected a finite number"),
        (["5", "1", "--rate", "1e12"], "--rate must be a positive number of at most 1e+06"),
        (["5", "1", "--timeout", "1e9"], "--timeout must be a positive number of at most 604800"),
        (["5000000", "1"], "USERS must be a number between 1 and 1e+06"),
        (["5", "1", "--start-at", "inf"], "--start-at must be a number between"),
        (["5", "1", "--run-id", "a b"], "--run-id 'a b': up to 64 letters"),
        (["5", "1", "--no-such-option"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(args: list[str], message: str) -> None:
    status, _, err = loadtest(*args)
    assert status == 2
    assert message in err


def test_rate_keeps_to_its_schedule() -> None:
    with serving() as server:
        status, out, _ = loadtest("3", "5", "--url", server.url, "--rate", "50", "--target-rps", "1")
        arrivals = sorted(server.arrivals)
    assert status == 0, out
    assert len(arrivals) == 15
    # 15 starts at 50/s are 14 intervals of 20 ms apart: the server cannot see them sooner than that.
    assert arrivals[-1] - arrivals[0] >= 14 * 0.02 * 0.9


def test_rate_reports_the_queueing_of_a_slow_server(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    with serving("slow", delay=0.05) as server:
        args = ["4", "5", "--url", server.url, "--rate", "100", "--target-rps", "1", "--target-avg-ms", "1e6"]
        status, _, _ = loadtest(*args, "--json", str(report))
        assert server.count == 20
    data = read_json(report)
    assert status == 0
    # The server finishes one request per 50 ms, so the last of 20 ends >= 1 s after the start although it
    # was scheduled at 190 ms: measured from its scheduled start its latency shows >= 0.8 s of queueing.
    assert data["totals"]["latency_ms"]["max"] >= 800
    assert data["config"]["mode"] == "open_loop"


def test_post_body_and_headers_are_sent(tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"title": "x"}')
    with serving() as server:
        args = ["2", "3", "--url", server.url, "--method", "post", "--body-file", str(body)]
        status, out, _ = loadtest(*args, "--header", "Authorization: Bearer abc")
        assert server.count == 6
    assert status == 0, out


def test_duration_runs_for_a_time_instead_of_a_count() -> None:
    with serving() as server:
        status, out, err = loadtest("2", "--url", server.url, "--duration", "0.5", "--target-rps", "1")
        seen = server.count
    assert status == 0, out
    assert "Starting load test: 2 users, for 0.5s" in out
    assert f"Total requests: {seen}\n" in out
    assert "\r" not in err


def test_the_stdlib_parser_and_asyncio_loop_give_the_same_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parser_module, "httptools", None)
    with serving("close-header") as server:
        config = LoadTestConfig(target=parse_url(server.url), users=3, requests=10)
        result = run_load_test(config, use_uvloop=False)
        assert server.count == 30
    assert (result.parser, result.event_loop) == ("python", "asyncio")
    assert result.results.total.successful == 30


def test_https_with_tls_verification_and_insecure(tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    command = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    command += ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serving(tls=context) as server:
        refused = loadtest("1", "1", "--url", server.url)
        status, out, _ = loadtest("2", "5", "--url", server.url, "--insecure", "--target-rps", "1")
        seen = server.count
    assert refused[0] == 1
    assert "TLS error" in refused[2] or "tls error" in refused[2]
    assert status == 0, out
    assert seen == 10


@pytest.mark.parametrize("use_uvloop", [True, False])
def test_bodies_read_until_the_server_closes_count_as_responses(use_uvloop: bool) -> None:
    with serving("eof") as server:
        config = LoadTestConfig(target=parse_url(server.url), users=2, requests=5)
        result = run_load_test(config, use_uvloop=use_uvloop)
        assert server.count == 10
    assert (result.results.total.successful, result.results.total.errors) == (10, {})


def test_an_unwritable_report_is_an_exit_2_before_any_request() -> None:
    with serving() as server:
        status, out, err = loadtest("2", "5", "--url", server.url, "--json", "/nonexistent-dir/r.json")
        assert server.count == 0
    assert status == 2
    assert "Starting load test" not in out
    assert "cannot be written" in err


def test_help_shows_every_default_and_version_is_ours(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        call_command("loadtest", "--help")
    text = " ".join(capsys.readouterr().out.split())
    for default in (
        "(default: http://127.0.0.1:8000)",
        "repeatable (default: /)",
        "(default: GET)",
        "(default: 10)",
        "(default: 1)",
        "percent, at least (default: 99)",
        "under (default: 200)",
        "over (default: 50)",
        "(default: any 2xx)",
        "(default: /api/v1/healthcheck/)",
        "seconds to get healthy (default: 30)",
    ):
        assert default in text
    with pytest.raises(SystemExit):
        call_command("loadtest", "--version")
    assert capsys.readouterr().out.strip() == f"django-prodkit {django_prodkit.__version__}"
