"""The OTLP metrics export's cost per interval at 50 routes and 8 workers.

Run: ``python benchmarks/otlp_export.py``. One process sets Django up in multiprocess mode and forks eight
workers that count requests over 50 routes (two methods, three statuses, the duration and queries histograms)
with the real prometheus_client writer; their files stay, as a running server's do. The process that holds the
export lock then exports to an OTLP/HTTP receiver on 127.0.0.1 that reads and discards each body: cumulative
(the default), and delta with every series changed since the last export (between two delta exports, outside
the timing, a worker counts one request per series and is folded as gunicorn's ``child_exit`` hook does).
Each interval's work is timed as a whole (``export_once``: read the merged files, build the series, encode,
POST) and by part, in interleaved rounds (medians). The request path does not change: the export runs in its
own thread, once per interval.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
ROUTES = 50
WORKERS = 8
REQUESTS_PER_WORKER = 2000
METHODS = ("GET", "POST")
STATUSES = (200, 404, 500)


class _Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _count(store: Any, rng: random.Random, every_series: bool) -> None:
    labels = [(m, f"/api/v1/resource-{r}/<int:pk>/", s) for r in range(ROUTES) for m in METHODS for s in STATUSES]
    plan = labels if every_series else [rng.choice(labels) for _ in range(REQUESTS_PER_WORKER)]
    for method, route, status in plan:
        store.observe(method, route, status, rng.expovariate(50))
        store.observe_queries(method, route, rng.randrange(12))


def _fork_worker(store: Any, seed: int, every_series: bool = False, until: tuple[int, int] | None = None) -> int:
    """A worker that counts, then exits (folded like a recycled one) or, with ``until``, lives until that pipe closes.

    The store folds a dead writer's files on any read, so the eight workers of the measured directory stay alive,
    as a server's do, and only the recycled one of each delta round exits.
    """
    pid = os.fork()
    if pid == 0:
        try:
            _count(store, random.Random(seed), every_series)
            if until is not None:
                release, hold = until
                os.close(hold)  # the parent's copy is then the last writer
                os.read(release, 1)  # returns at end of file, when the parent closes its end
        finally:
            os._exit(0)
    if until is None:
        os.waitpid(pid, 0)
    return pid


def _timed(function: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = function()
    return (time.perf_counter() - start) * 1000.0, value


def _measure(rounds: int, seed: int) -> dict[str, Any]:
    """In this process (multiprocess mode): fill the directory, then time the exports."""
    import django

    django.setup()
    from django_prodkit.metrics.store import get_store

    store = get_store()
    release, hold = os.pipe()
    workers = [_fork_worker(store, seed + worker, until=(release, hold)) for worker in range(WORKERS)]
    try:
        return _exports(store, rounds, seed)
    finally:
        os.close(hold)
        for pid in workers:
            os.waitpid(pid, 0)
        os.close(release)


def _exports(store: Any, rounds: int, seed: int) -> dict[str, Any]:
    from django_prodkit.conf import get_config
    from django_prodkit.metrics.compaction import compact
    from django_prodkit.metrics.otlp.config import resolve
    from django_prodkit.metrics.otlp.encoding import encode
    from django_prodkit.metrics.otlp.exporter import build_exporter
    from django_prodkit.metrics.otlp.series import snapshot

    config = get_config()
    cumulative = build_exporter(
        resolve(config, {**os.environ, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "cumulative"}), store
    )
    delta = build_exporter(
        resolve(config, {**os.environ, "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta"}), store
    )
    samples: dict[str, list[float]] = {"cumulative": [], "delta": [], "read": [], "series": [], "encode": []}
    if not delta.export_once():  # its baseline
        raise SystemExit("the delta exporter could not take the export lock")
    rng = random.Random(seed)
    for round_number in range(rounds):
        order = ["cumulative", "delta", "parts"]
        rng.shuffle(order)
        for name in order:
            # One export lock per directory: the other exporter lets go of it first, as a recycled holder does.
            if name == "cumulative":
                delta.leadership.release()
                elapsed, exported = _timed(cumulative.export_once)
                if not exported:
                    raise SystemExit("the cumulative exporter could not take the export lock")
                samples[name].append(elapsed)
            elif name == "delta":
                # A worker that recycled through every series, so the delta export has all of them to send.
                # Folded as gunicorn's child_exit hook does, so the directory stays at eight workers' files.
                _fork_worker(store, 10_000 + round_number, every_series=True)
                compact(store.directory)
                cumulative.leadership.release()
                samples[name].append(_timed(delta.export_once)[0])
            else:
                read_ms, families = _timed(store.families)
                series_ms, series = _timed(lambda families=families: snapshot(families))
                encode_ms, _body = _timed(
                    lambda series=series: encode(
                        series, cumulative.resource, 0, time.time_ns(), "cumulative"
                    ).SerializeToString()
                )
                samples["read"].append(read_ms)
                samples["series"].append(series_ms)
                samples["encode"].append(encode_ms)
    series = snapshot(store.families())
    body = encode(series, cumulative.resource, 0, time.time_ns(), "cumulative").SerializeToString()
    import gzip

    return {
        "series": len(series.values),
        "payload_bytes": len(body),
        "payload_gzip_bytes": len(gzip.compress(body)),
        **{f"{name}_ms": round(statistics.median(values), 2) for name, values in samples.items()},
        "samples": {name: [round(v, 3) for v in values] for name, values in samples.items()},
    }


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The Markdown table of docs/otlp-metrics.md and docs/benchmarks.md."""
    settings = result["settings"]
    lines = [
        f"| {settings['routes']} routes, {settings['workers']} workers: {result['series']} series | median (ms) |",
        "| --- | ---: |",
        f"| one cumulative export (read, encode, POST) | {result['cumulative_ms']:.2f} |",
        f"| one delta export, every series changed | {result['delta_ms']:.2f} |",
        f"| of which: reading the merged files | {result['read_ms']:.2f} |",
        f"| of which: building the series | {result['series_ms']:.2f} |",
        f"| of which: encoding the protobuf | {result['encode_ms']:.2f} |",
        f"| request body, and gzipped | {result['payload_bytes'] / 1024:,.0f} KiB, "
        f"{result['payload_gzip_bytes'] / 1024:,.0f} KiB |",
        f"| the machine's load average at the end (on {result['machine']['cpus']} cores) | "
        f"{result['machine'].get('load_average', 'not recorded')} |",
    ]
    return {"cost": "\n".join(lines)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(_measure(args.rounds, args.seed)))
        return
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    thread = threading.Thread(target=sink.serve_forever, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="prodkit-otlp-bench-") as directory:
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "DJANGO_SETTINGS_MODULE": "benchmarks.e2e_settings",
                "PRODKIT_BENCH_STACK": "prodkit",
                "PROMETHEUS_MULTIPROC_DIR": directory,
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"http://127.0.0.1:{sink.server_address[1]}/v1/metrics",
            }
            command = [sys.executable, __file__, "--measure", "--rounds", str(args.rounds), "--seed", str(args.seed)]
            output = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=900)
    finally:
        sink.shutdown()
        sink.server_close()
    result = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": round(os.getloadavg()[0], 1),
        },
        "settings": {
            "routes": ROUTES,
            "workers": WORKERS,
            "requests_per_worker": REQUESTS_PER_WORKER,
            "rounds": args.rounds,
        },
        **json.loads(output.stdout),
        "seconds": round(time.monotonic() - started, 1),
    }
    for block in tables(result).values():
        print(block, end="\n\n")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "otlp_export.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
