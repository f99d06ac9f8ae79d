"""Per-request overhead of middleware, measured in process through Django's ``WSGIHandler``.

Run: ``python benchmarks/overhead.py`` (or ``make bench``). Each scenario runs in its own worker process
(so logging, structlog and prometheus_client setups cannot interfere); the coordinator asks the workers
for batches of requests in interleaved, shuffled rounds and reports the median per-request time of each,
its overhead over Django's default middleware stack, and the targets of the issues as ratios taken in
this one run. The time is the worker's own CPU time: on a shared machine a wall clock also counts the
time a worker waits while other jobs run, which swamped the differences being measured.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.harness import interleave  # noqa: E402
from benchmarks.stacks import DEFAULT_STACK, BareAccessLogMiddleware  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


BASE_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_prodkit",
]


@dataclass
class Scenario:
    """One middleware stack to measure; ``setup`` runs in the worker before Django is set up."""

    name: str
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    default_stack: bool = True
    apps: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    setup: Callable[[], None] | None = None
    # Runs after ``settings.configure`` and before ``django.setup`` (an instrumentor that edits MIDDLEWARE).
    configured: Callable[[], None] | None = None
    # Scenario names whose ratio this one is judged against, with the largest allowed ratio.
    group: str = "core"


def _devnull_logging(fmt: str = "json") -> dict[str, Any]:
    from django_prodkit.logging import configure_logging

    # The standard library's encoder, what ``pip install django-prodkit`` gives (orjson is an extra).
    config = configure_logging(fmt=fmt, level="INFO", json_encoder="json")
    stdout = config["handlers"]["stdout"]
    # The same StreamHandler path, writing to /dev/null (a FileHandler opens it in the worker, when configured).
    stdout.pop("stream", None)
    stdout.update({"class": "logging.FileHandler", "filename": os.devnull})
    return config


def _setup_access_log() -> None:
    os.environ["PRODKIT_BENCH_LOGGING"] = "prodkit-json"


def _setup_django_structlog() -> None:
    os.environ["PRODKIT_BENCH_LOGGING"] = "django-structlog-json"


def _django_structlog_logging() -> dict[str, Any]:
    """django-structlog's documented JSON setup (its README's ``LOGGING`` + ``structlog.configure``)."""
    import structlog

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json_formatter": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processor": structlog.processors.JSONRenderer(),
            },
        },
        "handlers": {
            "json_file": {
                "class": "logging.FileHandler",
                "filename": os.devnull,
                "formatter": "json_formatter",
            },
        },
        "loggers": {"django_structlog": {"handlers": ["json_file"], "level": "INFO"}},
    }


class EmptyMiddleware:
    """A middleware that does nothing: what any middleware layer costs before it does any work."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)


#: A bare stdlib logging call per request with the access fields: what any access log costs at the least.
BARE_LINE = "+ a bare stdlib logging line per request"


class DevnullBareAccessLogMiddleware(BareAccessLogMiddleware):
    """A bare stdlib logging line per request, the yardstick of any access log, written to /dev/null."""

    filename = os.devnull


SCENARIOS: list[Scenario] = [
    Scenario("no middleware", default_stack=False),
    Scenario("default stack"),
    Scenario("+ an empty middleware (the floor)", before=["benchmarks.overhead.EmptyMiddleware"]),
    Scenario("+ RequestIDMiddleware", before=["django_prodkit.middleware.RequestIDMiddleware"]),
    Scenario(
        "+ AccessLogMiddleware (JSON lines)",
        after=["django_prodkit.middleware.AccessLogMiddleware"],
        setup=_setup_access_log,
    ),
    Scenario(BARE_LINE, after=["benchmarks.overhead.DevnullBareAccessLogMiddleware"]),
    Scenario("+ django-guid", before=["django_guid.middleware.guid_middleware"], apps=["django_guid"]),
    Scenario(
        "+ django-log-request-id",
        before=["log_request_id.middleware.RequestIDMiddleware"],
        settings={"GENERATE_REQUEST_ID_IF_NOT_IN_HEADER": True},
    ),
    Scenario(
        "+ django-structlog (JSON)",
        after=["django_structlog.middlewares.RequestMiddleware"],
        apps=["django_structlog"],
        setup=_setup_django_structlog,
    ),
]

#: (scenario, reference, largest allowed ratio of their overheads over the default stack).
TARGETS: list[tuple[str, str, float]] = [
    ("+ RequestIDMiddleware", "+ django-guid", 0.25),
    ("+ AccessLogMiddleware (JSON lines)", "+ django-structlog (JSON)", 0.25),
    ("+ AccessLogMiddleware (JSON lines)", BARE_LINE, 1.3),
]

#: (scenario, largest allowed overhead in microseconds).
ABSOLUTE_TARGETS: list[tuple[str, float]] = [("+ RequestIDMiddleware", 5.0)]


# --- X-Ray (issue 6): TracingMiddleware's X-Ray backend beside aws-xray-sdk's own, same sampling --------------

_NOTHING_SAMPLED = {"version": 2, "rules": [], "default": {"fixed_target": 0, "rate": 0.0}}
_PRODKIT_XRAY = "django_prodkit.middleware.TracingMiddleware"
_SDK_XRAY = "aws_xray_sdk.ext.django.middleware.XRayMiddleware"
_DAEMONS: list[Any] = []


def _open_xray_daemon() -> None:
    """A UDP socket on 127.0.0.1 as the daemon; never read (the kernel drops what overflows its buffer)."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    _DAEMONS.append(sock)
    os.environ["AWS_XRAY_DAEMON_ADDRESS"] = f"127.0.0.1:{sock.getsockname()[1]}"


def _sdk_xray_setup(name: str) -> Callable[[], None]:
    def setup() -> None:
        from aws_xray_sdk.core.sampling.local.sampler import LocalSampler

        _open_xray_daemon()
        # The SDK's centralized sampler would start pollers; its local one is what django-prodkit uses here too.
        _scenario(name).settings["XRAY_RECORDER"]["SAMPLER"] = LocalSampler()

    return setup


def _prodkit_xray(name: str, enabled: bool, **xray: Any) -> Scenario:
    return Scenario(
        name,
        before=[_PRODKIT_XRAY],
        settings={
            "PRODKIT": {"SERVICE_NAME": "bench", "XRAY": {"ENABLED": enabled, "CENTRALIZED_SAMPLING": False, **xray}}
        },
        setup=_open_xray_daemon,
        group="xray",
    )


def _sdk_xray(name: str, **recorder: Any) -> Scenario:
    return Scenario(
        name,
        before=[_SDK_XRAY],
        apps=["aws_xray_sdk.ext.django"],
        settings={"XRAY_RECORDER": {"AWS_XRAY_TRACING_NAME": "bench", "AUTO_INSTRUMENT": False, **recorder}},
        setup=_sdk_xray_setup(name),
        group="xray",
    )


SCENARIOS.extend(
    [
        _prodkit_xray("+ TracingMiddleware, X-Ray (off)", False),
        _prodkit_xray("+ TracingMiddleware, X-Ray (not sampled)", True, SAMPLING_RULES=_NOTHING_SAMPLED),
        _prodkit_xray("+ TracingMiddleware, X-Ray (all sampled)", True, SAMPLING=False),
        _sdk_xray("+ aws-xray-sdk XRayMiddleware (not sampled)", SAMPLING_RULES=_NOTHING_SAMPLED),
        _sdk_xray("+ aws-xray-sdk XRayMiddleware (all sampled)", SAMPLING=False),
    ]
)
TARGETS.extend(
    [
        ("+ TracingMiddleware, X-Ray (not sampled)", "+ aws-xray-sdk XRayMiddleware (not sampled)", 0.2),
        ("+ TracingMiddleware, X-Ray (all sampled)", "+ aws-xray-sdk XRayMiddleware (all sampled)", 0.5),
    ]
)
# "Off" removes itself at startup: the same chain as the default stack, so only noise is left.
ABSOLUTE_TARGETS.append(("+ TracingMiddleware, X-Ray (off)", 1.0))


# --- Metrics (issue 4): MetricsMiddleware beside django-prometheus, both in prometheus_client multiprocess mode
# (every worker process gets its own PROMETHEUS_MULTIPROC_DIR from ``measure``).

SCENARIOS.extend(
    [
        Scenario(
            "+ MetricsMiddleware (multiprocess)",
            before=["django_prodkit.middleware.MetricsMiddleware"],
            group="metrics",
        ),
        Scenario(
            "+ django-prometheus (multiprocess)",
            before=["django_prometheus.middleware.PrometheusBeforeMiddleware"],
            after=["django_prometheus.middleware.PrometheusAfterMiddleware"],
            apps=["django_prometheus"],
            group="metrics",
        ),
    ]
)
TARGETS.append(("+ MetricsMiddleware (multiprocess)", "+ django-prometheus (multiprocess)", 0.2))


# --- OpenTelemetry (issue 12): TracingMiddleware's OTel backend beside opentelemetry-instrumentation-django,
# both with the same SDK, a BatchSpanProcessor and an exporter that drops every batch (no network, no encoding).

_TRACING = "django_prodkit.middleware.TracingMiddleware"


def _noop_exporter() -> Any:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class NoopExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    return NoopExporter()


def _prodkit_otel_setup(sampler: str) -> Callable[[], None]:
    def setup() -> None:
        from django_prodkit.tracing.otel import tracer

        os.environ["OTEL_TRACES_SAMPLER"] = sampler
        tracer.otlp_exporter = lambda endpoint, session=None: (_noop_exporter(), "no-op")  # type: ignore[assignment]

    return setup


def _prodkit_otel(name: str, enabled: bool, sampler: str = "always_on") -> Scenario:
    return Scenario(
        name,
        before=[_TRACING],
        settings={"PRODKIT": {"SERVICE_NAME": "bench", "OTEL": {"ENABLED": enabled}}},
        setup=_prodkit_otel_setup(sampler),
        group="otel",
    )


def _dead_collector() -> None:
    """The real OTLP/HTTP exporter, sending to a port on 127.0.0.1 where nothing listens."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    os.environ["OTEL_TRACES_SAMPLER"] = "always_on"
    os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = f"http://127.0.0.1:{port}/v1/traces"


def _instrumentation_django(sampled: bool) -> Callable[[], None]:
    def configured() -> None:
        from opentelemetry import trace
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

        provider = TracerProvider(
            sampler=ALWAYS_ON if sampled else ALWAYS_OFF, resource=Resource.create({"service.name": "bench"})
        )
        provider.add_span_processor(BatchSpanProcessor(_noop_exporter()))
        trace.set_tracer_provider(provider)
        DjangoInstrumentor().instrument(tracer_provider=provider)

    return configured


SCENARIOS.extend(
    [
        _prodkit_otel("+ TracingMiddleware, OTel (off)", False),
        _prodkit_otel("+ TracingMiddleware, OTel (not sampled)", True, "always_off"),
        _prodkit_otel("+ TracingMiddleware, OTel (all sampled)", True, "always_on"),
        Scenario(
            "+ TracingMiddleware, OTel (all sampled, collector down)",
            before=[_TRACING],
            settings={"PRODKIT": {"SERVICE_NAME": "bench", "OTEL": {"ENABLED": True}}},
            setup=_dead_collector,
            group="otel",
        ),
        Scenario(
            "+ opentelemetry-instrumentation-django (not sampled)",
            configured=_instrumentation_django(False),
            group="otel",
        ),
        Scenario(
            "+ opentelemetry-instrumentation-django (all sampled)",
            configured=_instrumentation_django(True),
            group="otel",
        ),
    ]
)
TARGETS.extend(
    [
        ("+ TracingMiddleware, OTel (not sampled)", "+ opentelemetry-instrumentation-django (not sampled)", 0.2),
        ("+ TracingMiddleware, OTel (all sampled)", "+ opentelemetry-instrumentation-django (all sampled)", 1 / 3),
        # A dead collector must not slow requests: the same overhead as with an exporter that drops everything.
        ("+ TracingMiddleware, OTel (all sampled, collector down)", "+ TracingMiddleware, OTel (all sampled)", 1.25),
    ]
)
ABSOLUTE_TARGETS.append(("+ TracingMiddleware, OTel (off)", 1.0))


# --- The whole kit (issue 17): request id + metrics + JSON access log, beside the three peers that do the same --------

KIT = "+ the whole kit (request id + metrics + JSON access log)"
KIT_PEERS = "+ django-guid + django-prometheus + django-structlog (JSON)"
#: The peers measured one by one above; their overheads added up are the second yardstick of the kit.
PEER_ROWS = ("+ django-guid", "+ django-prometheus (multiprocess)", "+ django-structlog (JSON)")
PEERS_ADDED = "the three peers' rows, added up"

SCENARIOS.extend(
    [
        Scenario(
            KIT,
            before=["django_prodkit.middleware.RequestIDMiddleware", "django_prodkit.middleware.MetricsMiddleware"],
            after=["django_prodkit.middleware.AccessLogMiddleware"],
            setup=_setup_access_log,
            group="kit",
        ),
        Scenario(
            KIT_PEERS,
            before=[
                "django_guid.middleware.guid_middleware",
                "django_prometheus.middleware.PrometheusBeforeMiddleware",
            ],
            after=[
                "django_structlog.middlewares.RequestMiddleware",
                "django_prometheus.middleware.PrometheusAfterMiddleware",
            ],
            apps=["django_guid", "django_prometheus", "django_structlog"],
            setup=_setup_django_structlog,
            group="kit",
        ),
    ]
)
TARGETS.append((KIT, KIT_PEERS, 0.25))
ABSOLUTE_TARGETS.append((KIT, 50.0))


def _scenario(name: str) -> Scenario:
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise SystemExit(f"unknown scenario {name!r}")


# --- worker ---------------------------------------------------------------------------------------


def _ok_view(request: Any, slug: str) -> Any:
    from django.http import HttpResponse

    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns: list[Any] = []


def _configure(scenario: Scenario) -> None:
    from django.conf import settings
    from django.urls import path

    if scenario.setup:
        scenario.setup()
    logging_mode = os.environ.get("PRODKIT_BENCH_LOGGING")
    logging_config: dict[str, Any] = {"version": 1, "disable_existing_loggers": False}
    if logging_mode == "prodkit-json":
        logging_config = _devnull_logging("json")
    elif logging_mode == "django-structlog-json":
        logging_config = _django_structlog_logging()
    stack = DEFAULT_STACK if scenario.default_stack else []
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-only-not-secret",
        ALLOWED_HOSTS=["bench.local"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=BASE_APPS + scenario.apps,
        MIDDLEWARE=scenario.before + stack + scenario.after,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
        USE_TZ=True,
        LOGGING=logging_config,
        **scenario.settings,
    )
    if scenario.configured:
        scenario.configured()
    urlpatterns.append(path("bench/<slug:slug>/", _ok_view))


def _environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/bench/item-1/",
        "QUERY_STRING": "",
        "SERVER_NAME": "bench.local",
        "SERVER_PORT": "80",
        "HTTP_HOST": "bench.local",
        "HTTP_ACCEPT": "application/json",
        "HTTP_USER_AGENT": "prodkit-bench",
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def worker(name: str) -> None:
    """Serve batch requests from the coordinator: read N on stdin, answer ns per request."""
    import django
    from django.core.handlers.wsgi import WSGIHandler

    _configure(_scenario(name))
    django.setup()
    handler = WSGIHandler()
    template = _environ()
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        statuses.append(status)

    def run(count: int) -> float:
        statuses.clear()
        start = time.process_time_ns()
        for _ in range(count):
            environ = dict(template)
            environ["wsgi.input"] = io.BytesIO(b"")
            response = handler(environ, start_response)
            for _chunk in response:
                pass
            response.close()
        elapsed = time.process_time_ns() - start
        if any(not s.startswith("200") for s in statuses):
            raise SystemExit(f"{name}: non-200 responses: {sorted(set(statuses))}")
        return elapsed / count

    run(500)
    for line in sys.stdin:
        count = int(line)
        print(f"{run(count):.1f}", flush=True)


# --- coordinator ----------------------------------------------------------------------------------


def measure(names: list[str], rounds: int, batch: int, seed: int) -> dict[str, list[float]]:
    """Run interleaved rounds over the named scenarios; return per-request ns for each round."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, __file__, "--worker", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp()},
        )
        for name in names
    }
    return interleave(procs, rounds, seed, lambda name: batch)


def report(samples: dict[str, list[float]], rounds: int, batch: int) -> dict[str, Any]:
    """Medians, overheads over the default stack, and the target ratios."""
    medians = {name: statistics.median(values) / 1000.0 for name, values in samples.items()}
    base = medians.get("default stack", 0.0)
    rows = []
    for name, median in medians.items():
        overhead = median - base
        rows.append(
            {
                "scenario": name,
                "group": _scenario(name).group,
                "us_per_request": round(median, 2),
                "overhead_us": round(overhead, 2),
            }
        )
    overhead = {row["scenario"]: row["overhead_us"] for row in rows}
    targets = []
    for name, reference, limit in TARGETS:
        if name in overhead and reference in overhead and overhead[reference] > 0:
            ratio = overhead[name] / overhead[reference]
            targets.append(
                {
                    "scenario": name,
                    "reference": reference,
                    "ratio": round(ratio, 3),
                    "limit": limit,
                    "met": ratio <= limit,
                }
            )
    if KIT in overhead and all(name in overhead for name in PEER_ROWS):
        peers_sum = sum(overhead[name] for name in PEER_ROWS)
        if peers_sum > 0:
            ratio = overhead[KIT] / peers_sum
            targets.append(
                {
                    "scenario": KIT,
                    "reference": PEERS_ADDED,
                    "ratio": round(ratio, 3),
                    "limit": 0.25,
                    "met": ratio <= 0.25,
                }
            )
    for name, limit_us in ABSOLUTE_TARGETS:
        if name in overhead:
            targets.append(
                {
                    "scenario": name,
                    "overhead_us": overhead[name],
                    "limit_us": limit_us,
                    "met": overhead[name] <= limit_us,
                }
            )
    return {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "date": datetime.date.today().isoformat(),
        "rounds": rounds,
        "batch": batch,
        "rows": rows,
        "targets": targets,
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"Python {result['machine']['python']} on {result['machine']['platform']}, "
        f"{result['rounds']} rounds x {result['batch']} requests, medians"
    )
    print()
    print("| scenario | us/request | overhead over default stack (us) |")
    print("| --- | ---: | ---: |")
    for row in result["rows"]:
        print(f"| {row['scenario']} | {row['us_per_request']:.2f} | {row['overhead_us']:+.2f} |")
    print()
    for target in result["targets"]:
        mark = "met" if target["met"] else "NOT met"
        if "ratio" in target:
            print(
                f"- {target['scenario']} / {target['reference']} overhead: {target['ratio']:.3f} "
                f"(target <= {target['limit']}) {mark}"
            )
        else:
            print(
                f"- {target['scenario']} overhead: {target['overhead_us']:.2f} us "
                f"(target <= {target['limit_us']} us) {mark}"
            )


# --- the docs' tables and chart (benchmarks/render_docs.py) ---------------------------------------------------

#: The scenarios that are django-prodkit's, drawn in its colour in the chart.
OURS = (
    "RequestIDMiddleware",
    "AccessLogMiddleware",
    "MetricsMiddleware",
    "TracingMiddleware",
    "the whole kit",
)
#: What each peer comparison of the README and the pages is about: (ours, peer, what).
PEERS = [
    ("+ RequestIDMiddleware", "+ django-guid", "request ids"),
    ("+ AccessLogMiddleware (JSON lines)", "+ django-structlog (JSON)", "JSON access log"),
    ("+ MetricsMiddleware (multiprocess)", "+ django-prometheus (multiprocess)", "metrics (multiprocess)"),
    (
        "+ TracingMiddleware, X-Ray (all sampled)",
        "+ aws-xray-sdk XRayMiddleware (all sampled)",
        "X-Ray, every request sampled",
    ),
    (
        "+ TracingMiddleware, OTel (all sampled)",
        "+ opentelemetry-instrumentation-django (all sampled)",
        "OpenTelemetry, every request sampled",
    ),
    (KIT, KIT_PEERS, "request ids + metrics + JSON access log, together"),
]


def _peer_name(scenario: str) -> str:
    return scenario.removeprefix("+ ").split(" (")[0].removesuffix(" XRayMiddleware")


def _kit_table(result: dict[str, Any]) -> str:
    """The whole kit beside the three peers, together and one by one, with the kit's targets (issue 17)."""
    rows = {row["scenario"]: row for row in result["rows"]}
    lines = ["| scenario | us/request | overhead over default stack (us) |", "| --- | ---: | ---: |"]
    for name in ("default stack", KIT, KIT_PEERS, *PEER_ROWS):
        if name in rows:
            row = rows[name]
            lines.append(f"| {name} | {row['us_per_request']:.2f} | {row['overhead_us']:+.2f} |")
    lines += ["", "| target | measured | |", "| --- | ---: | --- |"]
    for target in result["targets"]:
        if target["scenario"] != KIT:
            continue
        verdict = "met" if target["met"] else "**not met**"
        if "ratio" in target:
            reference = "the peers' stack" if target["reference"] == KIT_PEERS else PEERS_ADDED
            what = f"the kit's overhead / {reference} (at most {target['limit']})"
            lines.append(f"| {what} | {target['ratio']:.3f} | {verdict} |")
        else:
            what = f"the kit's overhead (at most +{target['limit_us']:.0f} us)"
            lines.append(f"| {what} | {target['overhead_us']:+.2f} us | {verdict} |")
    return "\n".join(lines)


def tables(result: dict[str, Any]) -> dict[str, str]:
    """Markdown blocks for the docs: every scenario, the targets, peer ratios, and the run's setup."""
    rows = {row["scenario"]: row for row in result["rows"]}
    scenarios = ["| scenario | us/request | overhead over default stack (us) |", "| --- | ---: | ---: |"]
    scenarios += [f"| {r['scenario']} | {r['us_per_request']:.2f} | {r['overhead_us']:+.2f} |" for r in result["rows"]]
    targets = ["| target | measured | |", "| --- | ---: | --- |"]
    for target in result["targets"]:
        verdict = "met" if target["met"] else "**not met**"
        if "ratio" in target:
            what = f"`{target['scenario']}` adds at most {target['limit']} of `{target['reference']}`'s overhead"
            targets.append(f"| {what} | {target['ratio']:.3f} | {verdict} |")
        else:
            what = f"`{target['scenario']}` adds at most {target['limit_us']} us"
            targets.append(f"| {what} | {target['overhead_us']:+.2f} us | {verdict} |")
    peers = ["| us added per request | ours | peer | ratio |", "| --- | ---: | ---: | ---: |"]
    for ours, peer, what in PEERS:
        a, b = rows[ours]["overhead_us"], rows[peer]["overhead_us"]
        peers.append(f"| {what} | {a:.2f} | {_peer_name(peer)} {b:.2f} | {a / b:.2f} |")
    xray = [name for name in rows if "X-Ray" in name or "XRayMiddleware" in name or name == "default stack"]
    otel = [name for name in rows if rows[name].get("group") == "otel" or name == "default stack"]
    machine = result["machine"]
    return {
        "scenarios": "\n".join(scenarios),
        "targets": "\n".join(targets),
        "kit": _kit_table(result),
        "peers": "\n".join(peers),
        "xray": "\n".join(scenarios[:2] + [line for line in scenarios[2:] if line.split(" | ")[0][2:] in xray]),
        "otel": "\n".join(scenarios[:2] + [line for line in scenarios[2:] if line.split(" | ")[0][2:] in otel]),
        "metrics": (
            f"`MetricsMiddleware` adds {rows['+ MetricsMiddleware (multiprocess)']['overhead_us']:.2f} us per request "
            "over Django's default stack, django-prometheus "
            f"{rows['+ django-prometheus (multiprocess)']['overhead_us']:.2f} us (both in multiprocess mode)."
        ),
        "setup": (
            f"Python {machine['python']} on {machine['platform']}, {machine['cpus']} CPUs; "
            f"{result['rounds']} rounds x {result['batch']:,} requests per scenario, medians"
            + (f", {result['date']}." if "date" in result else ".")
        ),
    }


def charts(result: dict[str, Any]) -> dict[str, str]:
    """The overhead of each middleware over Django's default stack, as a bar chart."""
    from benchmarks.charts import bar_chart

    bars = [
        (row["scenario"].removeprefix("+ "), row["overhead_us"], any(mark in row["scenario"] for mark in OURS))
        for row in result["rows"]
        if row["scenario"].startswith("+ ")
    ]
    return {"overhead": bar_chart("Microseconds each middleware adds to a request", "us", bars, decimals=2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", action="append", help="measure only these scenarios (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    if args.list:
        for scenario in SCENARIOS:
            print(scenario.name)
        return
    names = [s.name for s in SCENARIOS]
    if args.only:
        names = [n for n in names if n in set(args.only) | {"default stack"}]
    samples = measure(names, args.rounds, args.batch, args.seed)
    result = report(samples, args.rounds, args.batch)
    print_table(result)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "overhead.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
