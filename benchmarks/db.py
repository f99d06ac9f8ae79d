"""What counting each request's database queries costs: per query against django-prometheus, and per request.

Run: ``python benchmarks/db.py`` (or ``make bench``). Each scenario runs in its own worker process; the
coordinator asks the workers for batches in interleaved, shuffled rounds and reports the median of each.

- Per query: ``cursor.execute("SELECT %s")`` on an in-memory SQLite database through Django's cursor, bare,
  with django_prodkit's execute wrapper (inside a counted request, with and without the warning thresholds,
  and outside any request), and through django-prometheus's database wrapper (its ``ENGINE``). The overhead is
  each scenario's time minus the bare one's; the target is django_prodkit's at most a third of
  django-prometheus's.
- Per request: a request through Django's ``WSGIHandler`` with ``RequestIDMiddleware`` and the JSON access log
  (to /dev/null), to a view making 0 or 10 queries, with counting on and off (``DB_QUERY_COUNTING``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.harness import interleave  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SQLITE = "django.db.backends.sqlite3"
PROMETHEUS_SQLITE = "django_prometheus.db.backends.sqlite3"
#: (scenario, reference, largest allowed ratio of their overheads).
TARGET = ("django_prodkit, in a request", "django-prometheus", 1 / 3)
REQUEST_QUERIES = (0, 10)


@dataclass(frozen=True)
class Scenario:
    """One worker's setup: per-query or per-request timing, the engine, and how counting is set up."""

    name: str
    kind: str  # "query" or "request"
    engine: str = SQLITE
    counting: str = "off"  # "off", "outside" (installed, no request), "request", "thresholds"
    queries: int = 0


SCENARIOS = {
    s.name: s
    for s in [
        Scenario("bare Django", "query"),
        Scenario("django_prodkit, in a request", "query", counting="request"),
        Scenario("django_prodkit, in a request, with thresholds", "query", counting="thresholds"),
        Scenario("django_prodkit, outside a request", "query", counting="outside"),
        Scenario("django-prometheus", "query", engine=PROMETHEUS_SQLITE),
        *(Scenario(f"request, {q} queries, off", "request", queries=q) for q in REQUEST_QUERIES),
        *(Scenario(f"request, {q} queries, on", "request", counting="request", queries=q) for q in REQUEST_QUERIES),
    ]
}

urlpatterns: list[Any] = []


def _configure(scenario: Scenario) -> None:
    from django.conf import settings
    from django.http import HttpResponse
    from django.urls import path

    from django_prodkit.logging import configure_logging

    logging_config = configure_logging(fmt="json", level="INFO")
    handler = logging_config["handlers"]["stdout"]
    handler.pop("stream", None)
    handler.update({"class": "logging.FileHandler", "filename": os.devnull})
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-only-not-secret",
        ALLOWED_HOSTS=["bench.local"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["django_prodkit"],
        MIDDLEWARE=["django_prodkit.middleware.RequestIDMiddleware", "django_prodkit.middleware.AccessLogMiddleware"],
        DATABASES={"default": {"ENGINE": scenario.engine, "NAME": ":memory:"}},
        USE_TZ=True,
        LOGGING=logging_config,
        PRODKIT={"DB_QUERY_COUNTING": scenario.counting != "off"},
    )

    def view(request: Any) -> Any:
        from django.db import connection

        with connection.cursor() as cursor:
            for value in range(scenario.queries):
                cursor.execute("SELECT %s", [value])
        return HttpResponse(b"ok")

    urlpatterns.append(path("bench/", view))


def _query_runner(scenario: Scenario) -> Any:
    from django.db import connection

    from django_prodkit.db import counting as db

    cursor = connection.cursor()
    cursor.execute("SELECT 1")
    if scenario.counting != "off":
        db.install()
    if scenario.counting in ("request", "thresholds"):
        warning = 50 if scenario.counting == "thresholds" else None
        db.RequestCounter(warning, None).begin()

    def run(count: int) -> float:
        start = time.perf_counter_ns()
        for value in range(count):
            cursor.execute("SELECT %s", [value & 7])
        return (time.perf_counter_ns() - start) / count

    return run


def _request_runner() -> Any:
    from django.core.handlers.wsgi import WSGIHandler

    handler = WSGIHandler()
    template = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/bench/",
        "QUERY_STRING": "",
        "SERVER_NAME": "bench.local",
        "SERVER_PORT": "80",
        "HTTP_HOST": "bench.local",
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        statuses.append(status)

    def run(count: int) -> float:
        statuses.clear()
        start = time.perf_counter_ns()
        for _ in range(count):
            environ = dict(template)
            environ["wsgi.input"] = io.BytesIO(b"")
            response = handler(environ, start_response)
            for _chunk in response:
                pass
            response.close()
        elapsed = time.perf_counter_ns() - start
        if any(not s.startswith("200") for s in statuses):
            raise SystemExit(f"non-200 responses: {sorted(set(statuses))}")
        return elapsed / count

    return run


def worker(name: str) -> None:
    """Answer each batch size read on stdin with the nanoseconds per query (or per request)."""
    import django

    scenario = SCENARIOS[name]
    _configure(scenario)
    django.setup()
    run = _query_runner(scenario) if scenario.kind == "query" else _request_runner()
    run(500)
    for line in sys.stdin:
        print(f"{run(int(line)):.1f}", flush=True)


def measure(names: list[str], rounds: int, batches: dict[str, int], seed: int) -> dict[str, list[float]]:
    """Interleaved, shuffled rounds over the named scenarios; nanoseconds per unit for each round."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, __file__, "--worker", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for name in names
    }
    return interleave(procs, rounds, seed, lambda name: batches[SCENARIOS[name].kind])


def report(samples: dict[str, list[float]], rounds: int, batches: dict[str, int]) -> dict[str, Any]:
    """Fastest rounds, overheads and the target ratio."""
    import django

    # The fastest round of each: on a shared machine other processes only ever add time, so the minimum is the
    # cost itself and the medians mostly measure the neighbours.
    best = {name: min(values) for name, values in samples.items()}
    per_query = [
        {
            "scenario": name,
            "ns_per_query": round(best[name], 1),
            "overhead_ns": round(best[name] - best["bare Django"], 1),
        }
        for name, scenario in SCENARIOS.items()
        if scenario.kind == "query"
    ]
    per_request = []
    for queries in REQUEST_QUERIES:
        off = best[f"request, {queries} queries, off"] / 1000.0
        on = best[f"request, {queries} queries, on"] / 1000.0
        per_request.append(
            {"queries": queries, "off_us": round(off, 2), "on_us": round(on, 2), "overhead_us": round(on - off, 2)}
        )
    overhead = {row["scenario"]: row["overhead_ns"] for row in per_query}
    name, reference, limit = TARGET
    ratio = overhead[name] / overhead[reference] if overhead[reference] > 0 else None
    return {
        "python": platform.python_version(),
        "django": django.get_version(),
        "machine": platform.machine(),
        "rounds": rounds,
        "batches": batches,
        "per_query": per_query,
        "per_request": per_request,
        "target": {
            "scenario": name,
            "reference": reference,
            "ratio": None if ratio is None else round(ratio, 3),
            "limit": round(limit, 3),
            "met": ratio is not None and ratio <= limit,
        },
    }


def tables(result: dict[str, Any]) -> dict[str, str]:
    """Markdown tables by block name: ``per-query`` and ``per-request``."""
    target = result["target"]
    lines = ["| scenario | ns per query | overhead (ns) |", "| --- | ---: | ---: |"]
    lines += [f"| {r['scenario']} | {r['ns_per_query']:.0f} | {r['overhead_ns']:.0f} |" for r in result["per_query"]]
    verdict = "met" if target["met"] else "NOT met"
    ratio = "n/a" if target["ratio"] is None else f"{target['ratio']:.2f}"
    lines.append("")
    lines.append(
        f"Overhead of {target['scenario']} / {target['reference']}: **{ratio}** "
        f"(target at most {target['limit']:.2f}: {verdict}). Python {result['python']}, Django {result['django']}."
    )
    per_query = "\n".join(lines)
    lines = [
        "| queries in the request | counting off (µs) | counting on (µs) | overhead (µs) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['queries']} | {r['off_us']:.1f} | {r['on_us']:.1f} | {r['overhead_us']:.2f} |"
        for r in result["per_request"]
    ]
    return {"per-query": per_query, "per-request": "\n".join(lines)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--query-batch", type=int, default=20000)
    parser.add_argument("--request-batch", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--output", type=Path, default=RESULTS / "db.json")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    batches = {"query": args.query_batch, "request": args.request_batch}
    samples = measure(list(SCENARIOS), args.rounds, batches, args.seed)
    result = report(samples, args.rounds, batches)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    for table in tables(result).values():
        print(table, end="\n\n")


if __name__ == "__main__":
    main()
