"""CloudWatch publishing cost: the observer's per-request time, and request latency under gunicorn with CloudWatch
off, in emf mode, and in api mode against an endpoint that accepts connections and never answers.

    .venv/bin/python benchmarks/cloudwatch_latency.py [--requests 1000]

Prints a Markdown table (docs/cloudwatch.md quotes it with the machine it ran on).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django_prodkit.cloudwatch.config import CloudWatchSettings  # noqa: E402
from django_prodkit.cloudwatch.publisher import Publisher  # noqa: E402
from tests.test_cloudwatch_e2e import FlakyProxy, Gunicorn  # noqa: E402


def observer_cost_us(calls: int = 200_000) -> float:
    """Microseconds per ``Publisher.observe`` (what the request path pays), 12 endpoints, varied durations."""
    settings = CloudWatchSettings(True, "emf", "Bench", "bench", 60.0, (), 10_000, None, None, None)
    publisher = Publisher(settings)
    routes = [f"/api/v1/r{i}/" for i in range(12)]
    counter = iter(range(10**9))

    def one() -> None:
        i = next(counter)
        publisher.observe("GET", routes[i % 12], 200, 1.0 + (i % 997) / 7)

    return timeit.timeit(one, number=calls) / calls * 1e6


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    hanging = FlakyProxy(0, mode="stall")
    os.environ["AWS_ENDPOINT_URL_CLOUDWATCH"] = f"http://127.0.0.1:{hanging.port}"
    cases = {
        "CloudWatch off": {"ENABLE_CLOUDWATCH_METRICS": "false"},
        "emf mode (stdout)": {"PRODKIT_TEST_CW_MODE": "emf"},
        "api mode, endpoint hanging": {"PRODKIT_TEST_CW_FLUSH_INTERVAL": "0.5"},
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, (name, env) in enumerate(cases.items()):
            work = Path(tmp) / str(index)
            work.mkdir()
            server = Gunicorn(work, env, "--graceful-timeout", "1")
            try:
                server.serve(100)  # warm up
                _, seconds = server.serve(args.requests)
            finally:
                server.stop()
            ms = [s * 1000 for s in seconds]
            rows.append((name, percentile(ms, 0.5), percentile(ms, 0.95), percentile(ms, 0.99)))
    hanging.close()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"Observer cost: {observer_cost_us():.2f} us per request\n")
    print(f"gunicorn, 2 sync workers, {args.requests} requests from 4 clients on 127.0.0.1:\n")
    print("| CloudWatch | p50 ms | p95 ms | p99 ms |")
    print("| --- | --- | --- | --- |")
    for name, p50, p95, p99 in rows:
        print(f"| {name} | {p50:.2f} | {p95:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    main()
