"""End-to-end cost of the metrics: gunicorn throughput under wrk, and the time to read the endpoint.

Run: ``python benchmarks/metrics_e2e.py`` (needs ``wrk``). Three gunicorn servers (2 sync workers each,
127.0.0.1, multiprocess mode through ``django_prodkit.gunicorn``) serve the same view with Django's default
middleware, plus ``MetricsMiddleware``, or plus django-prometheus's pair. wrk drives them in interleaved,
shuffled rounds; the table gives median requests/second and each stack's ratio to the default one. Then
eight processes fill a multiprocess directory as eight workers would, and the endpoint is read (JSON and
Prometheus text) through Django's test client; the median read time is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
STACKS = ("default", "prodkit", "django-prometheus")
LABELS = {
    "default": "default stack",
    "prodkit": "default stack + MetricsMiddleware",
    "django-prometheus": "default stack + django-prometheus",
}
TOKEN = "bench-token"
_REQUESTS_PER_SEC = re.compile(r"Requests/sec:\s+([0-9.]+)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(stack: str, directory: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "benchmarks.e2e_settings",
        "PRODKIT_BENCH_STACK": stack,
        "PROMETHEUS_MULTIPROC_DIR": directory,
    }


def _start(stack: str, workers: int, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    directory = workdir / f"multiproc-{stack}"
    command = [sys.executable, "-m", "gunicorn", "-c", "python:django_prodkit.gunicorn"]
    command += ["--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]
    command += ["django.core.wsgi:get_wsgi_application()"]
    log = (workdir / f"gunicorn-{stack}.log").open("wb")
    process = subprocess.Popen(command, cwd=ROOT, env=_env(stack, str(directory)), stdout=log, stderr=log)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/warmup/", timeout=5) as answer:
                answer.read()
            return process, port
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.2)
    process.kill()
    process.wait()
    raise SystemExit(f"gunicorn for {stack!r} did not start; see {workdir}/gunicorn-{stack}.log")


def _wrk(wrk: str, port: int, seconds: int, connections: int) -> float:
    url = f"http://127.0.0.1:{port}/bench/item-1/"
    command = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", url]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    match = _REQUESTS_PER_SEC.search(output)
    if not match:
        raise SystemExit(f"cannot read wrk output:\n{output}")
    return float(match.group(1))


def throughput(rounds: int, seconds: int, connections: int, workers: int, seed: int) -> dict[str, list[float]]:
    """Requests/second of each stack in interleaved, shuffled rounds."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian package wrk)")
    samples: dict[str, list[float]] = {stack: [] for stack in STACKS}
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="prodkit-e2e-") as workdir:
        servers = {}
        try:
            for stack in STACKS:
                servers[stack] = _start(stack, workers, Path(workdir))
            for stack in STACKS:  # warm each server up before measuring
                _wrk(wrk, servers[stack][1], 1, connections)
            for _ in range(rounds):
                order = list(STACKS)
                rng.shuffle(order)
                for stack in order:
                    samples[stack].append(_wrk(wrk, servers[stack][1], seconds, connections))
        finally:
            for process, _port in servers.values():
                process.send_signal(signal.SIGTERM)
            for process, _port in servers.values():
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    return samples


def _fill(routes: int, requests: int, seed: int) -> None:
    """Act as one worker: count ``requests`` requests spread over ``routes`` routes, two methods, three statuses."""
    import django

    django.setup()
    from django_prodkit.metrics.store import get_store

    store = get_store()
    rng = random.Random(seed)
    for _ in range(requests):
        route = f"/api/v1/resource-{rng.randrange(routes)}/<int:pk>/"
        store.observe(rng.choice(("GET", "POST")), route, rng.choice((200, 200, 200, 404, 500)), rng.expovariate(50))


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
        timings[name] = round(statistics.median(durations), 2)
        timings[f"{name}_bytes"] = len(response.content)
    timings.update(_merge_only(reads))
    return timings


def _merge_only(reads: int) -> dict[str, float]:
    """Median milliseconds to merge the files alone: prometheus_client's collector against ours."""
    import glob

    from prometheus_client.multiprocess import MultiProcessCollector

    from django_prodkit.metrics.merge import merge_directory

    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]

    def collector() -> object:
        return MultiProcessCollector.merge(glob.glob(os.path.join(directory, "*.db")), accumulate=True)

    timings = {}
    for name, merge in (("collector_merge", collector), ("prodkit_merge", lambda: merge_directory(directory))):
        durations = []
        for _ in range(reads):
            start = time.perf_counter()
            merge()
            durations.append((time.perf_counter() - start) * 1000.0)
        timings[name] = round(statistics.median(durations), 2)
    return timings


def read_cost(workers: int, routes: int, requests: int, reads: int) -> dict[str, Any]:
    """Fill a multiprocess directory from ``workers`` processes, then time reading the endpoint."""
    with tempfile.TemporaryDirectory(prefix="prodkit-read-") as directory:
        env = _env("prodkit", directory)
        fillers = [
            subprocess.Popen(
                [sys.executable, __file__, "--fill", str(routes), str(requests), str(seed)], cwd=ROOT, env=env
            )
            for seed in range(workers)
        ]
        if any(process.wait() != 0 for process in fillers):
            raise SystemExit("a filler process failed")
        files = len(list(Path(directory).glob("*.db")))
        histogram_bytes = max(path.stat().st_size for path in Path(directory).glob("histogram_*.db"))
        output = subprocess.run(
            [sys.executable, __file__, "--read", str(reads)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
        ).stdout
    return {
        "workers": workers,
        "routes": routes,
        "files": files,
        "histogram_file_bytes": histogram_bytes,
        **json.loads(output),
    }


#: The issue's targets: throughput with MetricsMiddleware at least this share of the default stack's, and reading
#: the endpoint with 8 workers' files under this many milliseconds.
THROUGHPUT_TARGET = 0.93
READ_TARGET_MS = 50.0


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def tables(result: dict[str, Any]) -> dict[str, str]:
    """Markdown blocks for the docs: throughput per stack, the read cost, the targets, the peer ratio."""
    rows = {row["stack"]: row for row in result["throughput"]}
    ours, peer = rows[LABELS["prodkit"]], rows[LABELS["django-prometheus"]]
    read = result["read"]
    settings = result["settings"]
    throughput = ["| stack | requests/s | ratio to default |", "| --- | ---: | ---: |"]
    throughput += [
        f"| {row['stack']} | {row['requests_per_second']:.1f} | {row['ratio_to_default']:.3f} |"
        for row in result["throughput"]
    ]
    read_text = (
        f"Reading the endpoint with {read['workers']} workers' files ({read['files']} files, {read['routes']} routes "
        f"x 2 methods): JSON {read['json']:.2f} ms, Prometheus text {read['prometheus']:.2f} ms "
        f"({read['prometheus_bytes'] / 1000:.0f} kB), median of {settings['reads']}. Merging the files alone: "
        f"prometheus_client's `MultiProcessCollector` {read['collector_merge']:.2f} ms, django-prodkit's merge "
        f"{read['prodkit_merge']:.2f} ms."
    )
    slowest = max(read["json"], read["prometheus"])
    targets = "\n".join(
        [
            "| target | measured | |",
            "| --- | ---: | --- |",
            f"| throughput with `MetricsMiddleware` at least {THROUGHPUT_TARGET} of the default stack's "
            f"| {ours['ratio_to_default']:.3f} | {_met(ours['ratio_to_default'] >= THROUGHPUT_TARGET)} |",
            f"| reading the endpoint (JSON and Prometheus) under {READ_TARGET_MS:.0f} ms "
            f"| {slowest:.2f} ms | {_met(slowest < READ_TARGET_MS)} |",
        ]
    )
    peers = "\n".join(
        [
            "| throughput under gunicorn + wrk, ratio to no metrics | ours | peer |",
            "| --- | ---: | ---: |",
            f"| metrics (multiprocess) | {ours['ratio_to_default']:.3f} | "
            f"django-prometheus {peer['ratio_to_default']:.3f} |",
        ]
    )
    setup = (
        f"gunicorn with {settings['workers']} sync workers on 127.0.0.1, driven by `wrk -c{settings['connections']}`, "
        f"{settings['rounds']} interleaved rounds of {settings['seconds']} s, medians; Python "
        f"{result['machine']['python']}, {result['machine']['cpus']} CPUs."
    )
    blocks = {"throughput": "\n".join(throughput), "read": read_text, "targets": targets, "peers": peers}
    blocks["setup"] = setup
    if "histogram_file_bytes" in read:
        blocks["file-size"] = (
            f"In the read benchmark ({read['routes'] * 2} method and endpoint pairs) a worker's histogram file is "
            f"{read['histogram_file_bytes'] / 2**20:.2f} MiB."
        )
    return blocks


def charts(result: dict[str, Any]) -> dict[str, str]:
    """Requests per second of each stack, as a bar chart."""
    from benchmarks.charts import bar_chart

    bars = [
        (row["stack"], row["requests_per_second"], row["stack"] == LABELS["prodkit"]) for row in result["throughput"]
    ]
    return {"throughput": bar_chart("Requests per second under gunicorn and wrk", "req/s", bars)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fill", nargs=3, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--read", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5, help="length of one wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers per server")
    parser.add_argument("--read-workers", type=int, default=8)
    parser.add_argument("--routes", type=int, default=20, help="routes in the filled directory (x2 methods)")
    parser.add_argument("--reads", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.fill:
        _fill(*args.fill)
        return
    if args.read:
        print(json.dumps(_read(args.read)))
        return
    samples = throughput(args.rounds, args.seconds, args.connections, args.workers, args.seed)
    medians = {stack: statistics.median(values) for stack, values in samples.items()}
    reading = read_cost(args.read_workers, args.routes, 2000, args.reads)
    result = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "settings": {k: v for k, v in vars(args).items() if k not in ("fill", "read")},
        "throughput": [
            {
                "stack": LABELS[stack],
                "requests_per_second": round(medians[stack], 1),
                "ratio_to_default": round(medians[stack] / medians["default"], 3),
                "samples": samples[stack],
            }
            for stack in STACKS
        ],
        "read": reading,
    }
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, gunicorn {args.workers} sync workers, "
        f"wrk -c{args.connections}, {args.rounds} rounds x {args.seconds} s, medians"
    )
    print()
    print("| stack | requests/s | ratio to default |")
    print("| --- | ---: | ---: |")
    for row in result["throughput"]:
        print(f"| {row['stack']} | {row['requests_per_second']:.1f} | {row['ratio_to_default']:.3f} |")
    print()
    print(
        f"Reading the endpoint with {reading['workers']} workers' files ({reading['files']} files, "
        f"{reading['routes']} routes x 2 methods): JSON {reading['json']:.2f} ms, "
        f"Prometheus text {reading['prometheus']:.2f} ms ({reading['prometheus_bytes']} bytes), "
        f"median of {args.reads}"
    )
    print(
        f"Merging the files alone: prometheus_client's MultiProcessCollector {reading['collector_merge']:.2f} ms, "
        f"django-prodkit's merge {reading['prodkit_merge']:.2f} ms"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "metrics_e2e.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
