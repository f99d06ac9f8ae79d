"""The metric store, percentile accuracy, the multiprocess directory, the gunicorn hooks and the checks."""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from django_prodkit.metrics import multiproc
from django_prodkit.metrics.checks import check_metrics_settings, check_metrics_token
from django_prodkit.metrics.snapshot import build_snapshot, percentile
from django_prodkit.metrics.store import PERCENTILE_ERROR, MetricStore, default_buckets, percentile_error_bound

ROOT = Path(__file__).resolve().parent.parent


def exact_percentile(values: list[float], quantile: float) -> float:
    """Nearest rank: the smallest value with at least ``quantile`` of the sample at or below it."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(quantile * len(ordered))) - 1]


def test_default_buckets_bound_the_percentile_error_with_few_series() -> None:
    buckets = default_buckets()
    assert buckets[0] == 0.0005
    assert buckets[-1] >= 60.0 > buckets[-2]
    assert list(buckets) == sorted(set(buckets))
    assert percentile_error_bound(buckets) <= PERCENTILE_ERROR == 0.20
    # The fewest geometric bounds that keep the promise over that range: one fewer could not reach 60 s.
    assert len(buckets) == math.ceil(math.log(60.0 / 0.0005) / math.log((1 + PERCENTILE_ERROR) ** 2)) + 1 == 34


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_are_within_the_bound_of_the_exact_values(seed: int) -> None:
    rng = random.Random(seed)
    store = MetricStore(default_buckets(), None)
    samples: dict[str, list[float]] = {"/fast/": [], "/slow/": []}
    for _ in range(3000):
        route = rng.choice(list(samples))
        # Log-normal latencies: a long right tail like real traffic, from well under 1 ms to seconds.
        seconds = rng.lognormvariate(math.log(0.004 if route == "/fast/" else 0.2), 1.0)
        samples[route].append(seconds)
        store.observe("GET", route, 200, seconds)
    data = build_snapshot(store.families(), store.started_at, top=10, mode="single-process")
    bound = percentile_error_bound(default_buckets())
    everything = samples["/fast/"] + samples["/slow/"]
    checks = [(data["response_time_ms"], everything)]
    checks += [(data["top_endpoints_response_time_ms"][f"GET {route}"], values) for route, values in samples.items()]
    for timing, values in checks:
        for name, quantile in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            exact_ms = exact_percentile(values, quantile) * 1000.0
            assert abs(timing[name] - exact_ms) <= bound * exact_ms + 0.0005, (name, timing[name], exact_ms)
        assert timing["avg"] == pytest.approx(sum(values) / len(values) * 1000.0, abs=0.01)
    assert data["request_count"] == 3000


def test_percentile_edges() -> None:
    assert percentile([], 0.5) is None
    assert percentile([(1.0, 0.0), (math.inf, 0.0)], 0.5) is None
    assert percentile([(1.0, 4.0), (2.0, 4.0), (math.inf, 4.0)], 0.99) == 1.0
    assert percentile([(1.0, 0.0), (2.0, 0.0), (math.inf, 3.0)], 0.5) == 2.0
    assert percentile([(1.0, 1.0), (4.0, 2.0), (math.inf, 2.0)], 0.99) == 2.0


def test_prepare_directory_removes_a_previous_run(tmp_path: Path) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"old")
    (tmp_path / "keep.txt").write_text("not ours")
    multiproc.prepare_directory(str(tmp_path / "new"), now=100.0)
    multiproc.prepare_directory(str(tmp_path), now=200.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt", "new", multiproc.STARTED_MARKER]
    assert multiproc.read_started(str(tmp_path)) == 200.0
    assert multiproc.claim_started(str(tmp_path), now=300.0) == 200.0


def test_first_claim_records_the_start(tmp_path: Path) -> None:
    assert multiproc.read_started(str(tmp_path)) is None
    assert multiproc.claim_started(str(tmp_path), now=50.0) == 50.0
    assert multiproc.claim_started(str(tmp_path), now=60.0) == 50.0
    assert [p.name for p in tmp_path.iterdir()] == [multiproc.STARTED_MARKER]


def test_gunicorn_hooks_fold_the_counters_of_dead_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(multiproc.MULTIPROC_ENV, str(tmp_path))
    from django_prodkit import gunicorn

    (tmp_path / "counter_77.db").write_bytes(b"stale")
    gunicorn.on_starting(None)
    assert not (tmp_path / "counter_77.db").exists()
    for name in ("counter_42.db", "histogram_42.db", "gauge_livesum_42.db", "gauge_min_42.db"):
        (tmp_path / name).write_bytes(b"")
    gunicorn.child_exit(None, SimpleNamespace(pid=42))
    # Live gauges dropped, counters and histograms folded into the compacted store; other gauges left.
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["gauge_min_42.db"]
    assert (tmp_path / "prodkit_compacted").is_file()
    gunicorn.on_exit(None)
    assert tmp_path.is_dir() or gunicorn.CHOSEN_HERE


def test_importing_the_gunicorn_hooks_chooses_a_directory(tmp_path: Path) -> None:
    script = (
        "import os, gunicorn.app.base, django_prodkit.gunicorn as g; g.on_starting(None);"
        "d = os.environ['PROMETHEUS_MULTIPROC_DIR'];"
        "print(d, os.path.isdir(d), g.CHOSEN_HERE, oct(os.stat(d).st_mode & 0o777));"
        "g.on_exit(None); print(os.path.exists(d))"
    )
    env = {k: v for k, v in os.environ.items() if k != multiproc.MULTIPROC_ENV}
    env["TMPDIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=True
    )
    chosen, is_dir, chosen_here, mode, exists_after = result.stdout.split()
    assert chosen.startswith(str(tmp_path / "django-prodkit-metrics-"))
    # mkdtemp: a random name that only this user may enter.
    assert (is_dir, chosen_here, mode, exists_after) == ("True", "True", "0o700", "False")


def test_a_new_master_does_not_share_the_directory_of_the_old_one(tmp_path: Path) -> None:
    script = "import os, gunicorn.app.base, django_prodkit.gunicorn as g; print(os.environ['PROMETHEUS_MULTIPROC_DIR'])"
    old = str(tmp_path / "django-prodkit-metrics-1")
    env = {**os.environ, multiproc.MULTIPROC_ENV: old, "PRODKIT_METRICS_DIR_OWNER": "1", "TMPDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=True
    )
    assert result.stdout.strip() not in ("", old)
    env.pop("PRODKIT_METRICS_DIR_OWNER")
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=True
    )
    assert result.stdout.strip() == old


def test_importing_the_hooks_outside_gunicorn_changes_nothing() -> None:
    script = "import os, django_prodkit.gunicorn as g; print(g.CHOSEN_HERE, 'PROMETHEUS_MULTIPROC_DIR' in os.environ)"
    env = {k: v for k, v in os.environ.items() if k != multiproc.MULTIPROC_ENV}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def test_store_refuses_multiprocess_mode_when_prometheus_client_was_imported_first(tmp_path: Path) -> None:
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="imported before"):
        MetricStore(default_buckets(), str(tmp_path))


def ids(messages: list[Any]) -> list[str]:
    return [m.id for m in messages]


def test_token_check_warns_only_without_tokens(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.PRODKIT = {}
    (message,) = check_metrics_token()
    assert message.id == "prodkit.W020"
    assert "/api/v1/metrics/" in message.msg
    settings.PRODKIT = {"METRICS_TOKENS": ["t"]}
    assert check_metrics_token() == []
    settings.PRODKIT = {}
    monkeypatch.setenv("PRODKIT_METRICS_TOKENS", "from-env")
    assert check_metrics_token() == []


def test_token_check_is_silent_when_the_endpoint_is_not_routed(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.urls_without_prodkit"
    settings.PRODKIT = {}
    assert check_metrics_token() == []
    assert "prodkit.W021" not in ids(check_metrics_settings())


def test_settings_checks(settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings.MIDDLEWARE = ["django_prodkit.middleware.MetricsMiddleware"]
    settings.PRODKIT = {}
    assert check_metrics_settings() == []
    settings.PRODKIT = {"METRICS_BUCKETS": [0.1, 0.1, 1], "METRICS_TOP_ENDPOINTS": 0}
    assert ids(check_metrics_settings()) == ["prodkit.E020", "prodkit.E021"]
    settings.PRODKIT = {"METRICS_BUCKETS": [-1.0]}
    assert ids(check_metrics_settings()) == ["prodkit.E020"]
    settings.PRODKIT = {"METRICS_BUCKETS": [0.001 * i for i in range(1, 62)]}
    assert ids(check_metrics_settings()) == ["prodkit.W024"]
    settings.PRODKIT = {"METRICS_BUCKETS": [0.001 * i for i in range(1, 61)]}
    assert check_metrics_settings() == []
    settings.PRODKIT = {}
    monkeypatch.setenv(multiproc.MULTIPROC_ENV, str(tmp_path / "missing"))
    assert ids(check_metrics_settings()) == ["prodkit.E022"]
    # This test process imported prometheus_client in single-process mode, as a late variable would leave it:
    # our families are written to files of our own, so the counts are whole all the same.
    monkeypatch.setenv(multiproc.MULTIPROC_ENV, str(tmp_path))
    assert check_metrics_settings() == []
    monkeypatch.delenv(multiproc.MULTIPROC_ENV)
    settings.MIDDLEWARE = []
    assert ids(check_metrics_settings()) == ["prodkit.W021"]
    settings.PRODKIT = {"METRICS_TOP_ENDPOINTS": "ten"}
    assert check_metrics_settings() == []
    assert check_metrics_token() == []


def write_worker_file(directory: Path, kind: str, pid: int, entries: dict[str, float]) -> None:
    from prometheus_client.mmap_dict import MmapedDict

    file = MmapedDict(str(directory / f"{kind}_{pid}.db"))
    try:
        for key, value in entries.items():
            file.write_value(key, value, 0.0)
    finally:
        file.close()


def fake_worker(directory: Path, pid: int, rng: random.Random) -> None:
    """The files one worker would leave: per-bucket (not cumulative) counts, sums, request counters."""
    from prometheus_client.mmap_dict import mmap_key
    from prometheus_client.utils import floatToGoString

    from django_prodkit.metrics.store import DURATION_METRIC, REQUESTS_METRIC

    counters: dict[str, float] = {}
    histograms: dict[str, float] = {}
    for route in ("/a/", "/b/<int:pk>/", "<unmatched>"):
        for status in ("200", "404"):
            key = mmap_key(
                REQUESTS_METRIC,
                REQUESTS_METRIC + "_total",
                ["method", "route", "status"],
                ["GET", route, status],
                "help",
            )
            counters[key] = rng.randrange(1, 50)
        for bound in [*default_buckets()[::7], math.inf]:
            key = mmap_key(
                DURATION_METRIC,
                DURATION_METRIC + "_bucket",
                ["method", "route", "le"],
                ["GET", route, floatToGoString(bound)],
                "help",
            )
            histograms[key] = rng.randrange(0, 9)
        key = mmap_key(DURATION_METRIC, DURATION_METRIC + "_sum", ["method", "route"], ["GET", route], "help")
        histograms[key] = rng.uniform(0, 10)
    # Another library's metric in the same files must be left out.
    counters[mmap_key("other_total", "other_total", [], [], "not ours")] = 5.0
    write_worker_file(directory, "counter", pid, counters)
    write_worker_file(directory, "histogram", pid, histograms)


def as_samples(families: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): pytest.approx(s.value)
        for f in families
        if f.name.startswith("prodkit_")
        for s in f.samples
    }


def test_merge_equals_prometheus_clients_collector(tmp_path: Path) -> None:
    from prometheus_client.multiprocess import MultiProcessCollector

    from django_prodkit.metrics.merge import merge_directory

    rng = random.Random(9)
    for pid in range(1, 9):
        fake_worker(tmp_path, pid, rng)
    (tmp_path / "gauge_livesum_1.db").write_bytes(b"")
    reference = MultiProcessCollector.merge(
        [str(p) for p in tmp_path.glob("*.db") if not p.name.startswith("gauge")], accumulate=True
    )
    ours = merge_directory(str(tmp_path))
    assert [f.name for f in ours] == ["prodkit_http_requests", "prodkit_http_request_duration_seconds"]
    assert as_samples(ours) == as_samples(reference)
    # A file that grew (a new series) and a file replaced by a new process are read afresh.
    from prometheus_client.mmap_dict import mmap_key

    fake_worker(tmp_path, 1, random.Random(10))
    new_series = mmap_key(
        "prodkit_http_requests",
        "prodkit_http_requests_total",
        ["method", "route", "status"],
        ["POST", "/c/", "201"],
        "help",
    )
    write_worker_file(tmp_path, "counter", 1, {new_series: 3.0})
    (tmp_path / "counter_2.db").unlink()
    fake_worker(tmp_path, 2, random.Random(11))
    fake_worker(tmp_path, 9, random.Random(12))
    reference = MultiProcessCollector.merge(
        [str(p) for p in tmp_path.glob("*.db") if not p.name.startswith("gauge")], accumulate=True
    )
    merged = as_samples(merge_directory(str(tmp_path)))
    assert merged == as_samples(reference)
    assert merged[("prodkit_http_requests_total", (("method", "POST"), ("route", "/c/"), ("status", "201")))] == 3.0


WRITER = """
import sys, time
from prometheus_client import Counter, Histogram
from django_prodkit.metrics.store import DURATION_METRIC, REQUESTS_METRIC
requests = Counter(REQUESTS_METRIC, "h", ("method", "route", "status"))
duration = Histogram(DURATION_METRIC, "h", ("method", "route"), buckets=[0.001 * i for i in range(1, 60)])
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[1])
i = 0
while time.monotonic() < end:
    requests.labels("GET", f"/r{i}/", "200").inc()
    duration.labels("GET", f"/r{i}/").observe(0.01)
    i += 1
    time.sleep(0.002)
"""


def test_reading_while_a_worker_adds_series_never_fails(tmp_path: Path) -> None:
    """A scrape that lands while a worker appends a new series reads a consistent snapshot (no struct.error)."""
    from django_prodkit.metrics.merge import sum_files

    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    with subprocess.Popen([sys.executable, "-c", WRITER, "2.0"], env=env, stdout=subprocess.PIPE, text=True) as writer:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        reads = 0
        while writer.poll() is None and reads < 2000:
            totals = sum_files(str(tmp_path))
            reads += 1
            assert all(value >= 0 for value in totals.values())
        writer.wait(timeout=10)
    assert reads > 20
    final = sum_files(str(tmp_path))
    counted = [v for k, v in final.items() if '"prodkit_http_requests_total"' in k]
    assert counted
    assert all(v == 1.0 for v in counted)
