"""Months of recycled workers: the metrics read time and the directory size at 0, 500 and 5,000 recycles.

Run: ``python benchmarks/metrics_longrun.py``. One process sets Django up in multiprocess mode and forks
the workers: two live ones that stay (their files remain, as a running server's do), then recycled ones,
each counting 40 requests with the real store and exiting. Each process manager folds them its own way, with
the real compaction (``django_prodkit.metrics.compaction``): ``gunicorn`` (the parent folds the reaped worker,
as the ``child_exit`` hook does), ``celery`` (the child folds its own files on its way out, as
``worker_process_shutdown`` does with ``--max-tasks-per-child``) and ``uvicorn`` (no hooks: each new worker
folds the exited ones as it starts, as ``uvicorn --workers --limit-max-requests`` replacements do).
Forks instead of real recycles because 5,000 gunicorn recycles take about 40 minutes on 2 cores; the
files and the compaction are the same. At each stage a fresh process reads the endpoint through Django's
test client (JSON and Prometheus text); a copy of the directory is kept at each stage, and the copies are
read in interleaved, shuffled rounds at the end so the machine's noise hits every stage alike (medians).
For comparison, the same 500 recycles without compaction (what prometheus_client's multiprocess mode
leaves behind), read with the reader's own folding switched off.
Target: for each process manager, the read at 5,000 recycles is at most 1.5 times the read at 0, in this run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
TOKEN = "bench-token"
STAGES = (0, 500, 5000)
#: Without compaction only up to 500: 5,000 would leave 10,000 files and reads of seconds.
UNCOMPACTED_STAGES = (500,)
#: How the recycled workers are folded; the first is the table's main rows (and the results' ``compacted``).
MANAGERS = ("gunicorn", "celery", "uvicorn")
UNCOMPACTED = "none"
TARGET_RATIO = 1.5
LIVE_WORKERS = 2
ROUTES = 20
LIVE_REQUESTS = 2000
RECYCLED_REQUESTS = 40


def _env(directory: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "benchmarks.e2e_settings",
        "PRODKIT_BENCH_STACK": "prodkit",
        "PROMETHEUS_MULTIPROC_DIR": directory,
    }


def _count(store: Any, requests: int, rng: random.Random) -> None:
    for _ in range(requests):
        route = f"/api/v1/resource-{rng.randrange(ROUTES)}/<int:pk>/"
        store.observe(rng.choice(("GET", "POST")), route, rng.choice((200, 200, 200, 404, 500)), rng.expovariate(50))


def _worker(store: Any, requests: int, seed: int, manager: str) -> None:
    """Fork one worker that counts ``requests`` requests and exits, folded as ``manager`` folds exited workers."""
    from django_prodkit.metrics.compaction import compact
    from django_prodkit.metrics.multiproc import prepare_directory

    pid = os.fork()
    if pid == 0:
        try:
            if manager == "uvicorn":
                prepare_directory(store.directory)  # what a new worker's store does as it starts
            _count(store, requests, random.Random(seed))
            if manager == "celery":
                store.files.retire()  # worker_process_shutdown
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    if manager == "gunicorn":
        compact(store.directory)  # child_exit


def _directory_size(directory: str) -> tuple[int, int]:
    files = [entry for entry in os.scandir(directory) if entry.is_file(follow_symlinks=False)]
    # Allocated bytes, as du counts them: prometheus_client's files are sparse until written.
    return len(files), sum(entry.stat(follow_symlinks=False).st_blocks * 512 for entry in files)


def _read(reads: int, fold: bool) -> dict[str, float]:
    """Median milliseconds to read the endpoint as JSON and as Prometheus text through Django."""
    import django

    django.setup()
    if not fold:
        from django_prodkit.metrics import compaction, merge

        # The uncompacted comparison: neither the store's start nor a read finds anything to fold.
        compaction.dead_writers = merge.dead_writers = lambda *args, **kwargs: set()
    from django.test import Client

    client = Client()
    timings: dict[str, float] = {}
    for name, query in (("json", ""), ("prometheus", "?format=prometheus")):
        durations = []
        for _ in range(reads):
            start = time.perf_counter()
            response = client.get(f"/api/v1/metrics/{query}", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
            durations.append((time.perf_counter() - start) * 1000.0)
            if response.status_code != 200:
                raise SystemExit(f"metrics endpoint answered {response.status_code}")
        timings[f"{name}_ms"] = round(statistics.median(durations), 2)
        if name == "json":
            timings["request_count"] = json.loads(response.content)["request_count"]
    return timings


def _live_workers(store: Any) -> list[int]:
    """The live workers of a running server: forked, they count and then wait (their files stay unfolded)."""
    pids = []
    for seed in range(LIVE_WORKERS):
        ready, go = os.pipe()
        pid = os.fork()
        if pid == 0:
            # It outlives the fill process: it must not hold the pipe the coordinator reads the rows from.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            _count(store, LIVE_REQUESTS, random.Random(seed))
            os.close(ready)
            os.write(go, b"x")
            time.sleep(3600)
            os._exit(0)
        os.close(go)
        os.read(ready, 1)
        os.close(ready)
        pids.append(pid)
    return pids


def _fill(manager: str, stages: tuple[int, ...], snapshots: str) -> list[dict[str, Any]]:
    """In this process (multiprocess mode): live workers, then recycled ones; a copy of the directory per stage.

    The live workers outlive this process (they are killed once every copy was read), so their files stay
    live files in the copies, as a running server's do.
    """
    import django

    django.setup()
    from django_prodkit.metrics.store import get_store

    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    store = get_store()
    live = _live_workers(store)
    rows = []
    recycled = 0
    for stage in stages:
        started = time.monotonic()
        while recycled < stage:
            _worker(store, RECYCLED_REQUESTS, 1000 + recycled, manager)
            recycled += 1
        copy = os.path.join(snapshots, f"{manager}-{stage}")
        shutil.copytree(directory, copy)
        files, size = _directory_size(copy)
        seconds = round(time.monotonic() - started, 1)
        rows.append(
            {"manager": manager, "recycled": stage, "files": files, "bytes": size, "directory": copy}
            | {"fill_seconds": seconds, "live": live}
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _read_in(directory: str, reads: int, fold: bool) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--read", str(reads), "--fold", "1" if fold else "0"],
        cwd=ROOT,
        env=_env(directory),
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    ).stdout
    return dict(json.loads(output))


def _run(manager: str, stages: tuple[int, ...], snapshots: str) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="prodkit-longrun-") as directory:
        command = [sys.executable, __file__, "--fill", manager, ",".join(map(str, stages)), snapshots]
        output = subprocess.run(
            command, cwd=ROOT, env=_env(directory), capture_output=True, text=True, check=True, timeout=3600
        ).stdout
    return list(json.loads(output))


def _interleaved_reads(rows: list[dict[str, Any]], rounds: int, reads: int, seed: int) -> None:
    """Read every stage's copy in shuffled rounds (the machine's noise hits all alike); medians into ``rows``."""
    samples: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        samples[row["directory"]] = {"json_ms": [], "prometheus_ms": []}
    counts: dict[str, int] = {}
    rng = random.Random(seed)
    for _round in range(rounds):
        order = list(rows)
        rng.shuffle(order)
        for row in order:
            timings = _read_in(row["directory"], reads, row["manager"] != UNCOMPACTED)
            counts[row["directory"]] = int(timings["request_count"])
            for key in ("json_ms", "prometheus_ms"):
                samples[row["directory"]][key].append(timings[key])
    for row in rows:
        expected = LIVE_WORKERS * LIVE_REQUESTS + row["recycled"] * RECYCLED_REQUESTS
        if counts[row["directory"]] != expected:
            raise SystemExit(f"counted {counts[row['directory']]} requests, sent {expected}")
        row["request_count"] = expected
        for key, values in samples.pop(row["directory"]).items():
            row[key] = round(statistics.median(values), 2)
            row[f"{key}_samples"] = values
        del row["directory"]
    for pid in {pid for row in rows for pid in row.pop("live")}:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _ratio(rows: list[dict[str, Any]], key: str) -> float:
    return round(rows[-1][key] / rows[0][key], 3)


#: How the table names the recycled workers of each process manager after the first.
_LABELS = {"celery": " Celery children", "uvicorn": " uvicorn workers"}


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The Markdown tables of docs/metrics.md and docs/benchmarks.md, by block name."""
    lines = ["| recycled workers | files | directory size | JSON read (ms) | Prometheus read (ms) |"]
    lines.append("| ---: | ---: | ---: | ---: | ---: |")
    managers = result.get("managers", {})
    cases = [("", result["compacted"])]
    cases += [(_LABELS[name], managers[name]) for name in MANAGERS[1:] if name in managers]
    for label, rows in [*cases, (" without compaction", result["uncompacted"])]:
        for row in rows:
            lines.append(
                f"| {row['recycled']:,}{label} | {row['files']:,} | {row['bytes'] / 1024:,.0f} KiB | "
                f"{row['json_ms']:.2f} | {row['prometheus_ms']:.2f} |"
            )
    summary = ["| target | measured | |", "| --- | ---: | --- |"]
    last = result["compacted"][-1]["recycled"]
    targets = [("", result["target"])]
    targets += [(_LABELS[name], result["target"]["by_manager"][name]) for name in MANAGERS[1:] if name in managers]
    for label, target in targets:
        for key, name in (("json_ratio", "JSON"), ("prometheus_ratio", "Prometheus")):
            verdict = "met" if target[key] <= TARGET_RATIO else "**not met**"
            summary.append(
                f"| {name} read at {last:,} recycles{' of' + label if label else ''} / at 0, "
                f"at most {TARGET_RATIO} | {target[key]:.3f} | {verdict} |"
            )
    return {"read": "\n".join(lines), "target": "\n".join(summary)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fill", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--read", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fold", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of reads over the stages")
    parser.add_argument("--reads", type=int, default=10, help="reads per format and round (median)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--stages", default=",".join(map(str, STAGES)), help="recycles at which to read (a quick check: 0,200,1000)"
    )
    args = parser.parse_args()
    if args.read:
        print(json.dumps(_read(args.read, bool(args.fold))))
        return
    if args.fill:
        stages = tuple(int(stage) for stage in args.fill[1].split(","))
        print(json.dumps(_fill(args.fill[0], stages, args.fill[2])))
        return
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="prodkit-longrun-snapshots-") as snapshots:
        stages = tuple(int(stage) for stage in args.stages.split(","))
        by_manager = {manager: _run(manager, stages, snapshots) for manager in MANAGERS}
        uncompacted = _run(UNCOMPACTED, UNCOMPACTED_STAGES, snapshots)
        every = [row for rows in by_manager.values() for row in rows]
        _interleaved_reads([*every, *uncompacted], args.rounds, args.reads, args.seed)
    compacted = by_manager.pop(MANAGERS[0])
    ratios = {
        manager: {"json_ratio": _ratio(rows, "json_ms"), "prometheus_ratio": _ratio(rows, "prometheus_ms")}
        for manager, rows in [(MANAGERS[0], compacted), *by_manager.items()]
    }
    json_ratio, prometheus_ratio = ratios[MANAGERS[0]]["json_ratio"], ratios[MANAGERS[0]]["prometheus_ratio"]
    result = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "settings": {
            "rounds": args.rounds,
            "reads": args.reads,
            "live_workers": LIVE_WORKERS,
            "routes": ROUTES,
            "live_requests": LIVE_REQUESTS,
            "recycled_requests": RECYCLED_REQUESTS,
        },
        "compacted": compacted,
        "managers": by_manager,
        "uncompacted": uncompacted,
        "target": {
            "json_ratio": json_ratio,
            "prometheus_ratio": prometheus_ratio,
            "met": max(max(ratio.values()) for ratio in ratios.values()) <= TARGET_RATIO,
            "by_manager": ratios,
        },
        "seconds": round(time.monotonic() - started, 1),
    }
    for block in tables(result).values():
        print(block, end="\n\n")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "metrics_longrun.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
