"""Per-request time of the health endpoints, in process through Django's test client.

Run: ``python benchmarks/health.py`` (writes ``benchmarks/results/health.json`` and prints a Markdown table).
Liveness is measured served by ``HealthCheckMiddleware`` and through the default middleware stack; readiness
with one SQLite file database and one local-memory cache, each check in its own thread, run for every probe
(``HEALTH_CHECK_REUSE_SECONDS = 0``) and with the default reuse of a result for 1 s.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import django
from django.conf import settings
from django.urls import include, path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "health.json"
sys.path.insert(0, str(ROOT))

DEFAULT_STACK = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

urlpatterns = [path("api/v1/", include("django_prodkit.urls"))]

#: A run of the checks for every probe, or the default reuse of a result for 1 s (what a flood of probes costs).
EVERY_PROBE: dict[str, Any] = {"HEALTH_CHECK_REUSE_SECONDS": 0.0}
REUSED: dict[str, Any] = {}

SCENARIOS = [
    ("liveness, HealthCheckMiddleware", "/api/v1/healthcheck/", True, REUSED),
    ("liveness, default stack", "/api/v1/healthcheck/", False, REUSED),
    ("readiness (1 database, 1 cache), HealthCheckMiddleware", "/api/v1/healthcheck/ready/", True, EVERY_PROBE),
    ("readiness, result reused (the default)", "/api/v1/healthcheck/ready/", True, REUSED),
]


def measure(url: str, early: bool, requests: int, prodkit: dict[str, Any]) -> list[float]:
    """Microseconds per request for ``requests`` GETs of ``url``."""
    from django.test import Client, override_settings

    stack = ["django_prodkit.middleware.HealthCheckMiddleware", *DEFAULT_STACK] if early else DEFAULT_STACK
    with override_settings(MIDDLEWARE=stack, PRODKIT=prodkit):
        client = Client()
        assert client.get(url).status_code == 200  # warm up, and prove it answers
        timings = []
        for _ in range(requests):
            start = time.perf_counter()
            client.get(url)
            timings.append((time.perf_counter() - start) * 1e6)
    return timings


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The docs' table: median time per request of each scenario."""
    lines = ["| scenario | median per request |", "| --- | ---: |"]
    lines += [f"| {row['scenario']} | {row['median_us']:.0f} us |" for row in result["rows"]]
    requests = result["rows"][0]["requests"] if result["rows"] else 0
    setup = f"Python {result['python']}, Django {result['django']}, {requests:,} requests each through the test client."
    return {"scenarios": "\n".join(lines), "setup": setup}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="benchmark-only",
            ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF="__main__",
            INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django_prodkit"],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(Path(tmp) / "db.sqlite3")}},
            CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
            LOGGING_CONFIG=None,
        )
        django.setup()
        rows: list[dict[str, Any]] = []
        for name, url, early, prodkit in SCENARIOS:
            timings = measure(url, early, args.requests, prodkit)
            rows.append({"scenario": name, "median_us": statistics.median(timings), "requests": args.requests})
    result = {"python": platform.python_version(), "django": django.get_version(), "rows": rows}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Python {result['python']}, Django {result['django']}, {args.requests} requests each\n")
    print("| scenario | median per request |\n| --- | --- |")
    for row in rows:
        print(f"| {row['scenario']} | {row['median_us']:.0f} µs |")


if __name__ == "__main__":
    main()
