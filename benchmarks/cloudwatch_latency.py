"""CloudWatch publishing cost: the observer's per-request time, and request latency under gunicorn with CloudWatch
off, in emf mode, and in api mode against an endpoint that accepts connections and never answers.

    .venv/bin/python benchmarks/cloudwatch_latency.py [--requests 1000]

Prints a Markdown table and writes ``benchmarks/results/cloudwatch_latency.json``, which docs/cloudwatch.md and
docs/benchmarks.md show through ``benchmarks/render_docs.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import timeit
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "cloudwatch_latency.json"


def _setup_django() -> None:
    """Django with the tests' settings; only when measuring, so render_docs.py can import ``tables``."""
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    django.setup()


def observer_cost_us(calls: int = 200_000) -> float:
    """Microseconds per ``Publisher.observe`` (what the request path pays), 12 endpoints, varied durations."""
    from django_prodkit.cloudwatch.config import CloudWatchSettings
    from django_prodkit.cloudwatch.publisher import Publisher

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


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The docs' blocks: latency percentiles per mode, and the observer's cost."""
    lines = ["| CloudWatch | p50 ms | p95 ms | p99 ms |", "| --- | ---: | ---: | ---: |"]
    for row in result["rows"]:
        lines.append(f"| {row['mode']} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | {row['p99_ms']:.2f} |")
    observer = (
        f"The observer that feeds the publisher (`Publisher.observe`, the part of the request path that is ours) "
        f"costs {result['observer_us']:.2f} us per request."
    )
    setup = (
        f"gunicorn with 2 sync workers, {result['requests']:,} requests from 4 clients on 127.0.0.1; "
        f"{result['machine']}, {result['cpus']} CPUs, Python {result['python']}."
    )
    return {"latency": "\n".join(lines), "observer": observer, "setup": setup}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    _setup_django()
    from tests.test_cloudwatch_e2e import FlakyProxy, Gunicorn

    hanging = FlakyProxy(0, mode="stall")
    os.environ["AWS_ENDPOINT_URL_CLOUDWATCH"] = f"http://127.0.0.1:{hanging.port}"
    cases = {
        "off": {"ENABLE_CLOUDWATCH_METRICS": "false"},
        "emf mode (stdout)": {"PRODKIT_TEST_CW_MODE": "emf"},
        "api mode, endpoint accepting connections and never answering": {"PRODKIT_TEST_CW_FLUSH_INTERVAL": "0.5"},
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
    observer_us = observer_cost_us()
    result = {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "requests": args.requests,
        "observer_us": round(observer_us, 3),
        "rows": [
            {"mode": name, "p50_ms": round(p50, 3), "p95_ms": round(p95, 3), "p99_ms": round(p99, 3)}
            for name, p50, p95, p99 in rows
        ],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"Observer cost: {observer_us:.2f} us per request\n")
    print(f"gunicorn, 2 sync workers, {args.requests} requests from 4 clients on 127.0.0.1:\n")
    print("| CloudWatch | p50 ms | p95 ms | p99 ms |")
    print("| --- | --- | --- | --- |")
    for name, p50, p95, p99 in rows:
        print(f"| {name} | {p50:.2f} | {p95:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    main()
