"""Months of recycled workers: the metrics read time and the directory size at 0, 500 and 5,000 recycles.

Run: ``python benchmarks/metrics_longrun.py``. One process sets Django up in multiprocess mode and forks
the workers: two live ones that stay (their files remain, as a running server's do), then recycled ones,
each counting 40 requests with the real prometheus_client writer and exiting, after which the parent
folds its files exactly as gunicorn's ``child_exit`` hook does (``django_prodkit.metrics.compaction``).
Forks instead of gunicorn recycles because 5,000 gunicorn recycles take about 40 minutes on 2 cores; the
files and the compaction are the same. At each stage a fresh process reads the endpoint through Django's
test client (JSON and Prometheus text); a copy of the directory is kept at each stage, and the copies are
read in interleaved, shuffled rounds at the end so the machine's noise hits every stage alike (medians).
For comparison, the same 500 recycles without compaction (what prometheus_client's multiprocess mode, and
django-prodkit before it, leave behind).
Target: the read at 5,000 recycles is at most 1.5 times the read at 0, in this one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
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


def _worker(store: Any, requests: int, seed: int) -> int:
    """Fork one worker that counts ``requests`` requests and exits; returns its pid once it has exited."""
    pid = os.fork()
    if pid == 0:
        try:
            _count(store, requests, random.Random(seed))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    return pid


def _directory_size(directory: str) -> tuple[int, int]:
    files = [entry for entry in os.scandir(directory) if entry.is_file(follow_symlinks=False)]
    # Allocated bytes, as du counts them: prometheus_client's files are sparse until written.
    return len(files), sum(entry.stat(follow_symlinks=False).st_blocks * 512 for entry in files)


def _read(reads: int) -> dict[str, float]:
    """Median milliseconds to read the endpoint as JSON and as Prometheus text through Django."""
    import django

    django.setup()
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


def _fill(compact: bool, stages: tuple[int, ...], snapshots: str) -> list[dict[str, Any]]:
    """In this process (multiprocess mode): live workers, then recycled ones; a copy of the directory per stage."""
    import django

    django.setup()
    from django_prodkit.metrics.compaction import compact as fold
    from django_prodkit.metrics.store import get_store

    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    store = get_store()
    for seed in range(LIVE_WORKERS):
        _worker(store, LIVE_REQUESTS, seed)  # left unfolded: the live workers of a running server
    rows = []
    recycled = 0
    for stage in stages:
        started = time.monotonic()
        while recycled < stage:
            pid = _worker(store, RECYCLED_REQUESTS, 1000 + recycled)
            if compact:
                fold(directory, pid)
            recycled += 1
        copy = os.path.join(snapshots, f"{'compacted' if compact else 'uncompacted'}-{stage}")
        shutil.copytree(directory, copy)
        files, size = _directory_size(copy)
        seconds = round(time.monotonic() - started, 1)
        rows.append({"recycled": stage, "files": files, "bytes": size, "directory": copy, "fill_seconds": seconds})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _read_in(directory: str, reads: int) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--read", str(reads)],
        cwd=ROOT,
        env=_env(directory),
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    ).stdout
    return dict(json.loads(output))


def _run(compact: bool, stages: tuple[int, ...], snapshots: str) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="prodkit-longrun-") as directory:
        command = [sys.executable, __file__, "--fill", "1" if compact else "0", ",".join(map(str, stages)), snapshots]
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
            timings = _read_in(row["directory"], reads)
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


def _ratio(rows: list[dict[str, Any]], key: str) -> float:
    return round(rows[-1][key] / rows[0][key], 3)


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The Markdown tables of docs/metrics.md and docs/benchmarks.md, by block name."""
    lines = ["| recycled workers | files | directory size | JSON read (ms) | Prometheus read (ms) |"]
    lines.append("| ---: | ---: | ---: | ---: | ---: |")
    for label, rows in (("", result["compacted"]), (" without compaction", result["uncompacted"])):
        for row in rows:
            lines.append(
                f"| {row['recycled']:,}{label} | {row['files']:,} | {row['bytes'] / 1024:,.0f} KiB | "
                f"{row['json_ms']:.2f} | {row['prometheus_ms']:.2f} |"
            )
    target = result["target"]
    verdict = "met" if target["met"] else "**not met**"
    summary = [
        "| target | measured | |",
        "| --- | ---: | --- |",
        f"| JSON read at 5,000 recycles / at 0, at most {TARGET_RATIO} | {target['json_ratio']:.3f} | {verdict} |",
        f"| Prometheus read at 5,000 recycles / at 0, at most {TARGET_RATIO} | {target['prometheus_ratio']:.3f} "
        f"| {verdict} |",
    ]
    return {"read": "\n".join(lines), "target": "\n".join(summary)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fill", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--read", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of reads over the stages")
    parser.add_argument("--reads", type=int, default=10, help="reads per format and round (median)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.read:
        print(json.dumps(_read(args.read)))
        return
    if args.fill:
        stages = tuple(int(stage) for stage in args.fill[1].split(","))
        print(json.dumps(_fill(args.fill[0] == "1", stages, args.fill[2])))
        return
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="prodkit-longrun-snapshots-") as snapshots:
        compacted = _run(True, STAGES, snapshots)
        uncompacted = _run(False, UNCOMPACTED_STAGES, snapshots)
        _interleaved_reads([*compacted, *uncompacted], args.rounds, args.reads, args.seed)
    json_ratio, prometheus_ratio = _ratio(compacted, "json_ms"), _ratio(compacted, "prometheus_ms")
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
        "uncompacted": uncompacted,
        "target": {
            "json_ratio": json_ratio,
            "prometheus_ratio": prometheus_ratio,
            "met": max(json_ratio, prometheus_ratio) <= TARGET_RATIO,
        },
        "seconds": round(time.monotonic() - started, 1),
    }
    for block in tables(result).values():
        print(block, end="\n\n")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "metrics_longrun.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
