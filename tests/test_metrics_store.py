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
from tests.tools import Sleepers

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


def test_preparing_the_directory_folds_the_dead_and_keeps_the_live_and_the_totals(
    tmp_path: Path, sleepers: Sleepers
) -> None:
    from prometheus_client.mmap_dict import mmap_key

    from django_prodkit.metrics.merge import sum_files

    key = mmap_key("prodkit_tasks", "prodkit_tasks_total", ["task", "outcome"], ["t", "succeeded"], "h")
    (live,) = sleepers.start(1)
    write_worker_file(tmp_path, "counter", live, {key: 5.0})  # a Celery child that keeps running
    write_worker_file(tmp_path, "counter", 1, {key: 2.0})  # a process that has exited
    (tmp_path / "counter_123.db").write_bytes(b"another library's")
    (tmp_path / "keep.txt").write_text("not ours")
    multiproc.prepare_directory(str(tmp_path / "new"), now=100.0)
    multiproc.prepare_directory(str(tmp_path), now=200.0)
    assert worker_path(tmp_path, "counter", live).exists()
    assert not worker_path(tmp_path, "counter", 1).exists()
    assert (tmp_path / "counter_123.db").read_bytes() == b"another library's"
    assert sum_files(str(tmp_path)) == {key: 7.0}
    # A restart (on_starting again) continues the totals and the start time: nothing live loses a count.
    multiproc.prepare_directory(str(tmp_path), now=300.0)
    assert sum_files(str(tmp_path)) == {key: 7.0}
    assert multiproc.read_started(str(tmp_path)) == 200.0
    assert multiproc.claim_started(str(tmp_path), now=300.0) == 200.0


def test_first_claim_records_the_start(tmp_path: Path) -> None:
    assert multiproc.read_started(str(tmp_path)) is None
    assert multiproc.claim_started(str(tmp_path), now=50.0) == 50.0
    assert multiproc.claim_started(str(tmp_path), now=60.0) == 50.0
    assert [p.name for p in tmp_path.iterdir()] == [multiproc.STARTED_MARKER]


def test_gunicorn_hooks_fold_the_counters_of_dead_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleepers: Sleepers
) -> None:
    monkeypatch.setenv(multiproc.MULTIPROC_ENV, str(tmp_path))
    from django_prodkit import gunicorn

    write_worker_file(tmp_path, "counter", 77, {})
    (live,) = sleepers.start(1)
    write_worker_file(tmp_path, "counter", live, {})
    gunicorn.on_starting(None)
    assert not worker_path(tmp_path, "counter", 77).exists()
    assert worker_path(tmp_path, "counter", live).exists()
    for name in ("gauge_livesum_42.db", "gauge_min_42.db"):
        (tmp_path / name).write_bytes(b"")
    write_worker_file(tmp_path, "counter", 42, {})
    write_worker_file(tmp_path, "histogram", 42, {})
    gunicorn.child_exit(None, SimpleNamespace(pid=DEAD_PID_BASE + 42))
    # prometheus_client drops another library's live gauges; ours are folded into the compacted store.
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["gauge_livesum_42.db", "gauge_min_42.db"]
    assert [p.name for p in tmp_path.glob("prodkit-*.mmap")] == [worker_path(tmp_path, "counter", live).name]
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


def test_the_store_shares_counts_even_when_prometheus_client_was_imported_first(tmp_path: Path) -> None:
    """This process imported prometheus_client in single-process mode; our own files do not depend on it."""
    from django_prodkit.metrics.snapshot import task_summary

    store = MetricStore(default_buckets(), str(tmp_path))
    assert store.files is not None
    try:
        store.observe("GET", "/a/", 200, 0.01)
        store.observe_task("t", "succeeded", 0.5)
        store.observe_queries("GET", "/a/", 3)
        other = MetricStore(default_buckets(), str(tmp_path))  # another process's view of the directory
        assert task_summary(other.families())["t"]["succeeded"] == 1
        data = build_snapshot(other.families(), other.started_at, top=5, mode="multiprocess")
        assert (data["request_count"], data["db_queries_avg"]) == (1, {"GET /a/": 3.0})
        # Every bucket of a series from its first observation, as prometheus_client writes them (+Inf included).
        buckets = [x for f in other.families() for x in f.samples if x.name.endswith("_seconds_bucket")]
        assert len([x for x in buckets if x.labels.get("route") == "/a/"]) == len(default_buckets()) + 1
        assert len([x for x in buckets if x.labels.get("task") == "t"]) == len(default_buckets()) + 1
        assert sorted(p.name.split("-")[1] for p in tmp_path.glob("prodkit-*.mmap")) == ["counter", "histogram"]
        assert not list(tmp_path.glob("*.db"))  # nothing prometheus_client's own collector would read
        # Retired (a Celery child on its way out): folded at once, and a later count opens a fresh file.
        store.files.retire()
        assert not list(tmp_path.glob("prodkit-*.mmap"))
        store.observe_task("t", "failed", 0.5)
        assert task_summary(other.families())["t"] == {**task_summary(other.families())["t"], "count": 2, "failed": 1}
        # The new file holds every bucket again, not only the one counted since.
        store.files.retire()
        store.observe_task("u", "succeeded", 0.5)
        fresh = [x for f in other.families() for x in f.samples if x.name.endswith("_seconds_bucket")]
        assert len([x for x in fresh if x.labels.get("task") == "u"]) == len(default_buckets()) + 1
    finally:
        store.files.close()


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


#: Above the largest pid Linux hands out (2**22): a fake writer built on it is certainly dead.
DEAD_PID_BASE = 1 << 22


def writer_name(pid: int) -> str:
    """The name of fake writer ``pid``: a process that has exited."""
    from django_prodkit.metrics.writers import current_writer

    return current_writer()._replace(pid=DEAD_PID_BASE + pid, start="1").name


def worker_path(directory: Path, kind: str, pid: int | str) -> Path:
    """Where writer ``pid`` (a fake dead one, or a real writer's name) keeps its ``kind`` values."""
    from django_prodkit.metrics.files import file_name

    return directory / file_name(kind, writer_name(pid) if isinstance(pid, int) else pid)


def write_worker_file(directory: Path, kind: str, pid: int | str, entries: dict[str, float]) -> None:
    from prometheus_client.mmap_dict import MmapedDict

    file = MmapedDict(str(worker_path(directory, kind, pid)))
    try:
        for key, value in entries.items():
            file.write_value(key, value, 0.0)
    finally:
        file.close()


def fake_worker(directory: Path, pid: int | str, rng: random.Random) -> None:
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
    write_worker_file(directory, "counter", pid, counters)
    write_worker_file(directory, "histogram", pid, histograms)


def as_samples(families: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): pytest.approx(s.value)
        for f in families
        if f.name.startswith("prodkit_")
        for s in f.samples
    }


def reference(directory: Path) -> Any:
    """prometheus_client's own merge of our files (copied under the names its collector expects)."""
    import shutil

    from prometheus_client.multiprocess import MultiProcessCollector

    from django_prodkit.metrics.files import summed_files

    copies = directory.parent / f"{directory.name}-reference"
    shutil.rmtree(copies, ignore_errors=True)
    copies.mkdir()
    for number, worker_file in enumerate(summed_files(str(directory))):
        shutil.copy(worker_file.path, copies / f"{worker_file.type}_{number}.db")
    return MultiProcessCollector.merge([str(p) for p in copies.glob("*.db")], accumulate=True)


def test_merge_equals_prometheus_clients_collector(tmp_path: Path, sleepers: Sleepers) -> None:
    from django_prodkit.metrics.merge import merge_directory

    directory = tmp_path / "metrics"
    directory.mkdir()
    rng = random.Random(9)
    writers = sleepers.start(8)
    for writer in writers:
        fake_worker(directory, writer, rng)
    (directory / "gauge_livesum_1.db").write_bytes(b"")  # another library's file: not read
    ours = merge_directory(str(directory))
    assert [f.name for f in ours] == ["prodkit_http_requests", "prodkit_http_request_duration_seconds"]
    assert as_samples(ours) == as_samples(reference(directory))
    # A file that grew (a new series) and a file replaced by a new process are read afresh.
    from prometheus_client.mmap_dict import mmap_key

    fake_worker(directory, writers[0], random.Random(10))
    new_series = mmap_key(
        "prodkit_http_requests",
        "prodkit_http_requests_total",
        ["method", "route", "status"],
        ["POST", "/c/", "201"],
        "help",
    )
    write_worker_file(directory, "counter", writers[0], {new_series: 3.0})
    worker_path(directory, "counter", writers[1]).unlink()
    fake_worker(directory, writers[1], random.Random(11))
    fake_worker(directory, sleepers.start(1)[0], random.Random(12))
    expected = as_samples(reference(directory))
    merged = as_samples(merge_directory(str(directory)))
    assert merged == expected
    assert merged[("prodkit_http_requests_total", (("method", "POST"), ("route", "/c/"), ("status", "201")))] == 3.0


WRITER = """
import os, sys, time
from django_prodkit.metrics.store import MetricStore
store = MetricStore([0.001 * i for i in range(1, 60)], os.environ["PROMETHEUS_MULTIPROC_DIR"])
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[1])
i = 0
while time.monotonic() < end:
    store.observe("GET", f"/r{i}/", 200, 0.01)
    i += 1
    time.sleep(0.002)
print(i, flush=True)
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
        written = int(writer.stdout.readline())
        writer.wait(timeout=10)
    assert reads > 20
    final = sum_files(str(tmp_path))
    counted = [v for k, v in final.items() if '"prodkit_http_requests_total"' in k]
    assert len(counted) == written
    assert all(v == 1.0 for v in counted)
    # The writer has exited: the read folded its files into the totals.
    assert not list(tmp_path.glob("prodkit-*.mmap"))
