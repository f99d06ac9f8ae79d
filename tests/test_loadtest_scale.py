"""Every core, many machines, scenarios: ``--processes``, ``--segment`` + ``--merge``, ``--scenario`` and thresholds.

All against the tests' own servers, which count what they really received.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from io import StringIO
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_prodkit.loadtest.histogram import Histogram
from django_prodkit.loadtest.report_json import SCHEMA_PATH
from tests.loadtest_servers import serving

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
ROOT = Path(__file__).resolve().parent.parent


def loadtest(*args: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("loadtest", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue(), f"{err.getvalue()}{exc}"
    return 0, out.getvalue(), err.getvalue()


def report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    jsonschema.validate(data, json.loads(SCHEMA_PATH.read_text()), format_checker=jsonschema.FormatChecker())
    return data


def test_two_processes_send_exactly_users_x_requests(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    with serving() as server:
        args = ["5", "12", "--url", server.url, "--path", "/a", "--path", "/b", "--processes", "2"]
        status, text, err = loadtest(*args, "--target-rps", "1", "--target-avg-ms", "1e9", "--json", str(out))
        seen = dict(server.paths)
    assert status == 0, err
    assert "Processes: 2" in text
    data = report(out)
    assert data["totals"]["requests"] == 60
    assert {name: figures["requests"] for name, figures in data["by_request"].items()} == seen == {"/a": 30, "/b": 30}
    assert data["mergeable"]["total"]["histogram"]["count"] == 60


def test_two_segments_merged_equal_one_run(tmp_path: Path) -> None:
    parts = [tmp_path / "1.json", tmp_path / "2.json"]
    merged = tmp_path / "merged.json"
    start_at = time.time() + 1.0
    with serving() as server:
        common = ["7", "6", "--url", server.url, "--path", "/x", "--path", "/y", "--rate", "300", "--target-rps", "1"]
        # The criteria are not what this test is about: a loaded machine must not fail it.
        common += ["--target-avg-ms", "1e9", "--start-at", datetime.fromtimestamp(start_at, timezone.utc).isoformat()]
        for index, part in enumerate(parts, 1):
            # A segment may itself run on several processes: its report is still that segment's.
            processes = ["--processes", "2"] if index == 1 else []
            status, _, err = loadtest(*common, *processes, "--segment", f"{index}/2", "--json", str(part))
            assert status == 0, err
        seen = dict(server.paths)
        first_arrival = min(server.arrivals)
    # Nothing was sent before --start-at (both segments waited for it).
    assert first_arrival - time.perf_counter() + time.time() >= start_at - 0.05
    first, second = report(parts[0]), report(parts[1])
    assert first["run"]["id"] == second["run"]["id"]
    assert first["run"]["segment"] == {"offset": 0, "modulus": 2, "segments": 2}
    criteria = ["--target-rps", "1", "--target-avg-ms", "1e9"]
    html = tmp_path / "merged.html"
    status, text, err = loadtest(
        "--merge", str(parts[0]), str(parts[1]), *criteria, "--json", str(merged), "--html", str(html)
    )
    assert status == 0, err
    assert f"HTML report written to {html}" in text
    assert "<h2>Per request</h2>" in html.read_text()
    assert "Merged 2 reports" in text
    whole = report(merged)
    # One machine's run: 7 users x 6 requests on one schedule, the same mix of paths.
    assert whole["totals"]["requests"] == 42 == first["totals"]["requests"] + second["totals"]["requests"]
    assert {name: f["requests"] for name, f in whole["by_request"].items()} == seen == {"/x": 21, "/y": 21}
    histograms = [Histogram.from_json(d["mergeable"]["total"]["histogram"]) for d in (first, second)]
    histograms[0].merge(histograms[1])
    assert Histogram.from_json(whole["mergeable"]["total"]["histogram"]) == histograms[0]
    assert whole["status_codes"] == {"200": 42}


def write(path: Path, data: dict[str, Any]) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def hostile(path: Path) -> list[tuple[dict[str, Any], str]]:
    """A good segment report made hostile one field at a time: each gave a traceback (or ate the memory) before."""
    cases = []
    for edit, message in (
        (lambda d: d["mergeable"]["total"]["histogram"]["buckets"].append([10**30, 1]), "expected a count"),
        (lambda d: d["mergeable"]["total"]["histogram"]["buckets"].append([10**6, 1]), "bucket 1000000: not a bucket"),
        (lambda d: d["mergeable"]["total"]["histogram"].update(count=10**30), "expected a count"),
        (lambda d: d["mergeable"]["total"]["histogram"].update(max=-1), "expected a count"),
        (lambda d: d["mergeable"]["total"].update(requests=True), "expected a count"),
        (lambda d: d["mergeable"].update(duration_s=float("inf")), "not a duration"),
        (lambda d: d["mergeable"]["total"]["status_codes"].update({"9" * 5000: 1}), "expected a status code"),
        (lambda d: d["run"]["segment"].update(modulus=0), "not a share of a run"),
        (lambda d: d["run"]["segment"].update(offset=5), "not a share of a run"),
        (lambda d: d["config"].update(timeout_s=float("nan")), "--timeout must be"),
        (lambda d: d["config"].update(users=10**12), "USERS must be"),
    ):
        data = report(path)
        edit(data)
        cases.append((data, message))
    return cases


def test_merge_rejects_what_is_not_the_segments_of_one_run(tmp_path: Path) -> None:
    one, two, other = tmp_path / "1.json", tmp_path / "2.json", tmp_path / "other.json"
    deep = tmp_path / "deep.json"
    deep.write_text('{"schema_version": 2, "run": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with serving() as server:
        runs = (("1/2", one, []), ("2/2", two, []), ("2/2", other, ["--run-id", "another-run"]))
        for segment, path, header in runs:
            status, _, err = loadtest("4", "3", "--url", server.url, *header, "--segment", segment, "--json", str(path))
            assert status in (0, 3), err
    cases = [
        ([one, one, two], "overlapping segments: 1/2 and 1/2"),
        ([one], "missing segment"),
        ([one, other], "is from a different run"),
        ([one, tmp_path / "absent.json"], "No such file"),
        ([one, Path(write(tmp_path / "bad.json", {"schema_version": 2}))], "not a loadtest JSON report"),
        ([one, Path(write(tmp_path / "old.json", {"schema_version": 1}))], "schema_version 1"),
        *[
            ([one, Path(write(tmp_path / f"hostile-{i}.json", data))], message)
            for i, (data, message) in enumerate(hostile(two))
        ],
        ([one, deep], "not a loadtest JSON report"),
    ]
    for files, message in cases:
        status, _, err = loadtest("--merge", *map(str, files))
        assert (status, message in err) == (2, True), (files, err)
    assert loadtest("4", "--merge", str(one), str(two))[0] == 2
    status, _, err = loadtest("--merge", str(one), str(two), "--html", str(tmp_path / "no" / "r.html"))
    assert (status, "cannot be written" in err) == (2, True)


SCENARIO = """
users = 4
requests_per_user = 40

[[requests]]
name = "list"
path = "/list"
weight = 3

[[requests]]
name = "item"
path = "/item"
method = "GET"
headers = { "X-Test" = "1" }
weight = 1
expect_status = [200]

[thresholds]
overall = ["error_rate<1%", "p99<5s"]
item = ["p95<5000"]
"""


def test_a_weighted_scenario_gives_the_server_its_mix(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "r.json"
    with serving() as server:
        status, text, err = loadtest("--scenario", str(scenario), "--url", server.url, "--json", str(out))
        seen = dict(server.paths)
    assert status in (0, 3), err
    assert sum(seen.values()) == 160
    # 3:1 within sampling error (the mix is spread evenly, so it is much closer than that).
    assert abs(seen["/list"] - 120) <= 4
    data = report(out)
    assert data["by_request"]["list"]["requests"] == seen["/list"]
    names = {(c["scope"], c["metric"]) for c in data["criteria"]}
    assert {("overall", "error_rate"), ("overall", "p99"), ("item", "p95")} <= names
    assert "P95 response of item:" in text


def test_stages_ramp_the_rate_the_server_sees(tmp_path: Path) -> None:
    scenario = tmp_path / "ramp.toml"
    scenario.write_text('[[requests]]\npath = "/"\n\n[[stages]]\nduration = 2\ntarget = 150\n')
    with serving() as server:
        status, _, err = loadtest(
            "4",
            "--scenario",
            str(scenario),
            "--rate",
            "10",
            "--url",
            server.url,
            "--target-rps",
            "1",
            "--target-avg-ms",
            "1e9",
        )
        arrivals = sorted(server.arrivals)
    assert status == 0, err
    # 10 -> 150 req/s over 2 s: 160 requests, and the second half of the time sees far more than the first.
    assert len(arrivals) == 160
    middle = arrivals[0] + 1.0
    assert sum(t >= middle for t in arrivals) > 2 * sum(t < middle for t in arrivals)


def test_stages_ramp_the_users_of_a_closed_loop(tmp_path: Path) -> None:
    scenario = tmp_path / "users.toml"
    scenario.write_text('[[requests]]\npath = "/"\n\n[[stages]]\nduration = 2\ntarget = 10\n')
    with serving("delay", delay=0.02) as server:
        args = ["1", "--scenario", str(scenario), "--url", server.url, "--target-rps", "1", "--target-avg-ms", "1e9"]
        status, text, err = loadtest(*args)
        arrivals = sorted(server.arrivals)
    assert status == 0, err
    assert "1 -> 10 users, 1 stages over 2s" in text
    # 1 -> 10 users, each request 20 ms: the second second carries clearly more requests than the first.
    middle = arrivals[0] + 1.0
    assert sum(t >= middle for t in arrivals) > 1.5 * sum(t < middle for t in arrivals)


def test_a_failing_threshold_exits_3_and_abort_stops_the_run_early(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    with serving(status=503) as server:
        args = ["2", "3000", "--url", server.url, "--target-success-rate", "0", "--target-rps", "0"]
        status, text, err = loadtest(*args, "--threshold", "error_rate<1%", "--abort-on-fail", "--json", str(out))
        seen = server.count
    assert status == 3, err
    assert "aborted: a threshold could no longer be met" in err
    assert "Aborted: a threshold could no longer be met" in text
    # 1 % of 6000 is 60 failures: it was lost long before the 6000th request.
    assert seen < 6000
    assert report(out)["stopped"] == "threshold"


def test_a_saturated_open_loop_ends_by_its_deadline_and_reports_dropped(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    with serving("slow", delay=0.02) as server:
        started = time.monotonic()
        args = ["4", "--url", server.url, "--rate", "300", "--duration", "2", "--timeout", "1", "--json", str(out)]
        status, text, _ = loadtest(*args, "--target-rps", "1", "--target-success-rate", "0", "--target-avg-ms", "1e9")
        took = time.monotonic() - started
    data = report(out)
    assert status == 0
    # At most 50 req/s served of 600 scheduled: the rest was dropped, not queued without end.
    assert data["totals"]["dropped"] > 300
    assert data["totals"]["requests"] == 600
    assert "Dropped:" in text
    # Bounded by --duration plus --timeout (plus the connection setup), not by the backlog.
    assert took < 2 + 1 + 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("users = \n", "s.toml:1: not valid TOML"),
        ('[[requests]]\npath = "/"\nweigth = 2\n', "s.toml:3: requests[0].weigth: unknown key"),
        ('[[requests]]\npath = "/"\n[[requests]]\npath = "x"\n', "s.toml:4: requests[1].path:"),
        ('[[requests]]\npath = "/"\nweight = "a"\n', "s.toml:3: requests[0].weight: expected float"),
        ("users = 2\n", "s.toml:1: requests: give at least one"),
        (
            '[[requests]]\npath = "/"\n[[stages]]\nduration = 0\ntarget = 1\n',
            "s.toml:4: stages[0].duration: must be positive",
        ),
        ('[[requests]]\npath = "/"\n[thresholds]\noverall = ["p95<<1"]\n', "s.toml:4: thresholds.overall: threshold"),
        ('[[requests]]\npath = "/"\n[thresholds]\nnobody = ["p95<1"]\n', "s.toml:4: thresholds.nobody: no request"),
        (
            '[[requests]]\npath = "/"\nmethod = "GET\\n"\n',
            "s.toml:3: requests[0].method: method 'GET\\n' is not a valid HTTP method",
        ),
        # TOML has inf and nan: they are refused with the key's name, not a traceback.
        ('rate = inf\n[[requests]]\npath = "/"\n', "s.toml:1: rate: expected a finite number, got inf"),
        ('timeout = nan\n[[requests]]\npath = "/"\n', "s.toml:1: timeout: expected a finite number, got nan"),
        ('duration = -inf\n[[requests]]\npath = "/"\n', "s.toml:1: duration: expected a finite number"),
        ('[[requests]]\npath = "/"\nweight = inf\n', "s.toml:3: requests[0].weight: expected a finite number"),
        (
            '[[requests]]\npath = "/"\n[[stages]]\nduration = inf\ntarget = 1\n',
            "s.toml:4: stages[0].duration: expected a finite number",
        ),
    ],
)
def test_bad_scenario_files_exit_2_naming_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(text)
    status, _, err = loadtest("2", "1", "--scenario", str(scenario))
    assert status == 2
    assert message in err


def test_a_scenario_and_request_flags_exclude_each_other(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text('[[requests]]\npath = "/"\n')
    for flag in (["--path", "/a"], ["--expect-status", "201"], ["--method", "POST"]):
        status, _, err = loadtest("2", "1", "--scenario", str(scenario), *flag)
        assert (status, "--scenario gives the requests" in err) == (2, True)


def console(*args: str) -> subprocess.Popen[str]:
    script = shutil.which("prodkit-loadtest", path=str(Path(sys.executable).parent))
    assert script, "the console script is installed with the package"
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    return subprocess.Popen(
        [script, *args], cwd="/", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_the_console_script_needs_no_django_project() -> None:
    with serving() as server:
        process = console("3", "4", "--url", server.url, "--target-rps", "1", "--target-avg-ms", "1e9")
        out, err = process.communicate(timeout=60)
        assert server.count == 12
    assert process.returncode == 0, err
    assert "Load test passed." in out
    process = console("--version")
    assert process.communicate(timeout=30)[0].startswith("django-prodkit ")
    process = console("0", "1")
    assert process.communicate(timeout=30)[1].strip() == "prodkit-loadtest: USERS must be at least 1, got 0"
    assert process.returncode == 2


def test_ctrl_c_stops_every_process_and_prints_the_merged_partial_report() -> None:
    with serving() as server:
        process = console("4", "--duration", "60", "--url", server.url, "--processes", "2")
        try:
            assert process.stdout is not None
            for line in process.stdout:
                if line.startswith("Target:"):
                    break
            time.sleep(1.5)
            process.send_signal(signal.SIGINT)
            rest, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert process.returncode == 1, err
    assert "Interrupted" in rest
    assert "interrupted: the test did not run to the end" in err


def test_the_load_engine_imports_nothing_of_django() -> None:
    code = (
        "import sys, django_prodkit.loadtest.cli, django_prodkit.loadtest.processes;"
        "print(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "[]"
