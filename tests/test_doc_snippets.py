"""Every code sample in the docs is a file under ``docs/snippets/`` that a test here runs in a realistic context.

Settings snippets are executed on top of the settings ``django-admin startproject`` writes and the resulting values
are checked against what the page promises (system checks, ``dictConfig``, ``check --deploy``); URL snippets are
routed and requested; gunicorn configurations are loaded the way gunicorn loads them. The JSON examples in the
pages parse, and those that show a real response or log line have the keys of one produced here.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import logging.config
import os
import re
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import django
import jsonschema
import pytest
import structlog
from django.core import checks
from django.core.management import call_command
from django.core.management.utils import get_random_secret_key
from django.http import HttpResponse
from django.template import Context, Engine
from django.test import Client, RequestFactory, override_settings
from django.utils.log import DEFAULT_LOGGING

from django_prodkit import gunicorn as prodkit_gunicorn
from django_prodkit.conf import type_errors, unknown_keys
from django_prodkit.metrics.store import reset_store
from django_prodkit.middleware import RequestIDMiddleware
from django_prodkit.settings import HSTS_RAMP_UP
from django_prodkit.tracing.backend import get_tracer, reset_tracer

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"
TEST_FILE = Path(__file__).name

#: Each snippet and the test that proves it right (the quickstart's are followed by ``tests/test_quickstart.py``).
EXERCISED_BY: dict[str, str] = {
    "overview_middleware.py": "test_middleware_snippets_follow_the_documented_order",
    "metrics_settings.py": "test_metrics_settings_and_urls_serve_the_documented_json",
    "metrics_urls.py": "test_metrics_settings_and_urls_serve_the_documented_json",
    "metrics_gunicorn_conf.py": "test_gunicorn_configurations_load_as_gunicorn_loads_them",
    "health_checks_urls.py": "test_health_urls_serve_the_documented_json",
    "health_checks_custom_check.py": "test_custom_health_check_decides_readiness",
    "health_checks_custom_settings.py": "test_custom_health_check_decides_readiness",
    "health_checks_middleware.py": "test_middleware_snippets_follow_the_documented_order",
    "cloudwatch_settings.py": "test_middleware_snippets_follow_the_documented_order",
    "cloudwatch_gunicorn_conf.py": "test_gunicorn_configurations_load_as_gunicorn_loads_them",
    "request_ids_get_request_id.py": "test_get_request_id_snippet",
    "request_ids_logging.py": "test_logging_snippet_writes_the_documented_json_lines",
    "settings_prodkit.py": "test_settings_reference_snippet_is_a_valid_configuration",
    "security_settings.py": "test_security_snippet_passes_check_deploy",
    "security_hsts_preload.py": "test_hsts_preload_snippet_is_the_last_ramp_up_step",
    "quickstart_settings.py": "test_quickstart.py",
    "quickstart_urls.py": "test_quickstart.py",
}
#: Files outside ``docs/snippets/`` that pages include, and the test that loads them.
EXTERNAL_INCLUDES: dict[str, str] = {
    "example_project/gunicorn.conf.py": "test_gunicorn_configurations_load_as_gunicorn_loads_them",
    "django_prodkit/loadtest/report.schema.json": "test_loadtest_e2e.py",
}
STARTPROJECT_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
#: django-prodkit's middleware in the one order every page uses (Django's own go between XRay and AccessLog).
DOCUMENTED_ORDER = [
    "django_prodkit.middleware.RequestIDMiddleware",
    "django_prodkit.middleware.HealthCheckMiddleware",
    "django_prodkit.middleware.MetricsMiddleware",
    "django_prodkit.middleware.XRayMiddleware",
    "django_prodkit.middleware.TracingMiddleware",
    "django_prodkit.middleware.AccessLogMiddleware",
]
#: Pages already written with their Python inline; each block is run by a test below.
INLINE_PAGES = {"tracing.md", "database.md"}
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)
TOKEN = "a-long-random-token"
INCLUDE = re.compile(r"^```\{literalinclude\}\s+(\S+)", re.M)
PYTHON_FENCE = re.compile(r"^\s*(```+|~~~+)\s*\{?(python3?|py|pycon|ipython)\}?\s*$|\{code-block\}\s*python", re.M)
JSON_BLOCK = re.compile(r"^```json\n(.*?)^```$", re.M | re.S)


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def json_blocks(page: str) -> list[Any]:
    return [json.loads(block) for block in JSON_BLOCK.findall((DOCS / page).read_text())]


def doc_json(page: str, key: str) -> dict[str, Any]:
    """The JSON example of ``page`` that has ``key`` at its top level."""
    (found,) = [block for block in json_blocks(page) if isinstance(block, dict) and key in block]
    return found  # type: ignore[no-any-return]


def startproject_settings(tmp_path: Path) -> dict[str, Any]:
    """The namespace of the ``settings.py`` that ``django-admin startproject mysite`` writes."""
    template = Path(django.__file__).parent / "conf" / "project_template" / "project_name" / "settings.py-tpl"
    context = {
        "project_name": "mysite",
        "secret_key": "x" * 50,
        "docs_version": "5.2",
        "django_version": django.get_version(),
    }
    source = Engine().from_string(template.read_text()).render(Context(context, autoescape=False))
    namespace: dict[str, Any] = {"__file__": str(tmp_path / "mysite" / "settings.py"), "__name__": "mysite.settings"}
    exec(compile(source, "mysite/settings.py", "exec"), namespace)
    return namespace


def quickstarted_settings(tmp_path: Path) -> dict[str, Any]:
    """startproject's settings with django-prodkit's middleware in the documented order (the overview's snippet)."""
    return run_snippet("overview_middleware.py", startproject_settings(tmp_path))


def run_snippet(name: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute a snippet in ``namespace`` (a fresh one by default), as if appended to that module."""
    namespace = {"__name__": "snippet"} if namespace is None else namespace
    path = SNIPPETS / name
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return namespace


def run_inline(page: str, index: int, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute the ``index``-th Python block of ``page`` in ``namespace`` (a fresh one by default)."""
    namespace = {"__name__": "snippet"} if namespace is None else namespace
    block = PYTHON_BLOCK.findall((DOCS / page).read_text())[index]
    exec(compile(block, f"{page}[{index}]", "exec"), namespace)
    return namespace


def urlconf_module(name: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Register a URL snippet as an importable module and return its dotted name."""
    module = types.ModuleType(f"docs_snippet_{name.removesuffix('.py')}")
    run_snippet(name, module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module.__name__


def prodkit_messages(**overrides: Any) -> list[str]:
    with override_settings(**overrides):
        return [f"{m.id}: {m.msg}" for m in checks.run_checks() if (m.id or "").startswith("prodkit.")]


def load_config_file(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_gunicorn_{path.stem.replace('.', '_')}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Leave logging and structlog as Django configured them, whatever the test applied."""
    yield
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    logging.config.dictConfig(DEFAULT_LOGGING)
    structlog.reset_defaults()


@pytest.fixture
def log_lines(restore_logging: None) -> Callable[[dict[str, Any]], Callable[[], list[dict[str, Any]]]]:
    """Apply a ``LOGGING`` dict and return a reader of the JSON lines its stdout handler writes."""

    def apply(config: dict[str, Any]) -> Callable[[], list[dict[str, Any]]]:
        logging.config.dictConfig(config)
        (handler,) = logging.getLogger().handlers
        assert isinstance(handler, logging.StreamHandler)
        buffer = io.StringIO()
        handler.setStream(buffer)
        return lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    return apply


# --- every sample is a tested snippet --------------------------------------------------------------------------


def test_no_python_code_block_is_written_inline() -> None:
    inline = [
        f"{page.name}: {m.group(0).strip()}"
        for page in pages()
        if page.name not in INLINE_PAGES
        for m in PYTHON_FENCE.finditer(page.read_text())
    ]
    assert inline == [], "put the sample in docs/snippets/ and include it with {literalinclude}"


def test_every_snippet_is_included_by_a_page_and_exercised_by_a_test() -> None:
    included = {
        (DOCS / target).resolve().relative_to(ROOT).as_posix()
        for page in pages()
        for target in INCLUDE.findall(page.read_text())
    }
    on_disk = {path.name for path in SNIPPETS.glob("*.py")}
    assert on_disk == set(EXERCISED_BY)
    assert included == {f"docs/snippets/{name}" for name in EXERCISED_BY} | set(EXTERNAL_INCLUDES)
    for name, test in {**EXERCISED_BY, **EXTERNAL_INCLUDES}.items():
        if test.endswith(".py"):
            assert Path(name).name in (ROOT / "tests" / test).read_text(), f"{test} does not use {name}"
        else:
            assert callable(globals().get(test)), f"{name}: no test named {test} in {TEST_FILE}"


# --- settings ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["overview_middleware.py", "health_checks_middleware.py", "cloudwatch_settings.py"])
def test_middleware_snippets_follow_the_documented_order(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = run_snippet(name, startproject_settings(tmp_path))
    middleware: list[str] = namespace["MIDDLEWARE"]
    ours = [entry for entry in middleware if entry.startswith("django_prodkit.")]
    assert ours == [entry for entry in DOCUMENTED_ORDER if entry in ours]
    after = 1 if ours[-1].endswith("AccessLogMiddleware") else 0
    assert middleware == ours[: len(ours) - after] + STARTPROJECT_MIDDLEWARE + ours[len(ours) - after :]
    prodkit = namespace.get("PRODKIT", {})
    if "django_prodkit.middleware.XRayMiddleware" in ours:
        monkeypatch.setenv("ENABLE_XRAY", "true")  # as the tracing page says, so the X-Ray checks run too
    assert prodkit_messages(MIDDLEWARE=middleware, PRODKIT=prodkit) == []
    monkeypatch.delenv("ENABLE_XRAY", raising=False)  # the request below needs no X-Ray daemon
    with override_settings(MIDDLEWARE=middleware, PRODKIT=prodkit):
        response = Client().get("/api/v1/healthcheck/", HTTP_HOST="10.0.3.17:8000")  # a probe by IP
    assert response.status_code == 200
    assert response["X-Request-ID"]


@pytest.mark.django_db
def test_tracing_page_code_runs_and_passes_the_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(PYTHON_BLOCK.findall((DOCS / "tracing.md").read_text())) == 4
    namespace = run_inline("tracing.md", 0, startproject_settings(tmp_path))
    middleware: list[str] = namespace["MIDDLEWARE"]
    ours = [entry for entry in middleware if entry.startswith("django_prodkit.")]
    assert ours == [entry for entry in DOCUMENTED_ORDER if entry in ours]
    assert middleware == ours[:-1] + STARTPROJECT_MIDDLEWARE + ours[-1:]
    monkeypatch.setenv("ENABLE_OTEL", "true")  # as the page says
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    assert prodkit_messages(MIDDLEWARE=middleware, PRODKIT=namespace["PRODKIT"]) == []
    direct = run_inline("tracing.md", 3)["PRODKIT"]
    assert prodkit_messages(MIDDLEWARE=middleware, PRODKIT=direct) == []
    monkeypatch.delenv("ENABLE_OTEL")
    annotate = run_inline("tracing.md", 1)["annotate"]
    run_task = run_inline("tracing.md", 2)["run_task"]
    request = types.SimpleNamespace()
    annotate(request, "t-1")  # tracing off: no prodkit_trace, nothing to do
    with override_settings(MIDDLEWARE=middleware, PRODKIT=namespace["PRODKIT"]):
        assert run_task("send_mail", {}, lambda: "sent") == "sent"
        response = Client().get("/api/v1/healthcheck/")
    assert response.status_code == 200


def test_settings_reference_snippet_is_a_valid_configuration(tmp_path: Path) -> None:
    namespace = run_snippet("settings_prodkit.py", quickstarted_settings(tmp_path))
    prodkit = namespace["PRODKIT"]
    assert unknown_keys(prodkit) == []
    assert type_errors(prodkit) == []
    assert prodkit_messages(MIDDLEWARE=namespace["MIDDLEWARE"], PRODKIT=prodkit) == []


def test_logging_snippet_writes_the_documented_json_lines(
    log_lines: Callable[[dict[str, Any]], Callable[[], list[dict[str, Any]]]],
) -> None:
    config = run_snippet("request_ids_logging.py")["LOGGING"]
    read = log_lines(config)

    def view(request: Any) -> Any:
        logging.getLogger("myproject.orders").info("order placed", extra={"order_id": 7})
        structlog.get_logger("myproject.orders").info("order shipped", order_id=7)
        return HttpResponse()

    RequestIDMiddleware(view)(RequestFactory().get("/", HTTP_X_REQUEST_ID="req-42"))
    stdlib_line, structlog_line = read()
    for line in (stdlib_line, structlog_line):
        assert set(line) == {"timestamp", "level", "logger", "event", "request_id", "order_id"}
        assert line["request_id"] == "req-42"
        assert line["level"] == "info"
    assert stdlib_line["event"] == "order placed"
    assert structlog_line["event"] == "order shipped"


@pytest.mark.django_db
def test_access_log_example_has_the_keys_of_a_real_line(
    log_lines: Callable[[dict[str, Any]], Callable[[], list[dict[str, Any]]]],
) -> None:
    documented = doc_json("request-ids.md", "event")
    read = log_lines(run_snippet("request_ids_logging.py")["LOGGING"])
    Client().get("/api/v1/items/blue-shoe/", HTTP_X_REQUEST_ID="req-7")
    (line,) = [record for record in read() if record["event"] == documented["event"]]
    assert set(line) == set(documented)
    assert line["route"] == "/api/v1/items/<slug:slug>/"
    assert line["request_id"] == "req-7"


def test_get_request_id_snippet() -> None:
    assert run_snippet("request_ids_get_request_id.py")["request_id"] is None
    seen: dict[str, Any] = {}

    def view(request: Any) -> Any:
        seen.update(run_snippet("request_ids_get_request_id.py"))
        return HttpResponse()

    response = RequestIDMiddleware(view)(RequestFactory().get("/"))
    assert seen["request_id"] == response.headers["X-Request-ID"]
    assert run_snippet("request_ids_get_request_id.py")["request_id"] is None


def _deploy_check(project: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PRODKIT", "SESSION_"))}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=project,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_security_snippet_passes_check_deploy(tmp_path: Path) -> None:
    call_command("startproject", "mysite", str(tmp_path))
    settings_py = tmp_path / "mysite" / "settings.py"
    template = settings_py.read_text()
    # Django 6.1's startproject sets a console MAILERS backend, which its own deploy check (mail.E001) rejects;
    # a real deployment configures SMTP (or another real backend), which is outside these helpers.
    mailers = (
        '\nMAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend"}}\n'
        if "MAILERS" in template
        else ""
    )
    settings_py.write_text(
        template
        + '\nINSTALLED_APPS += ["django_prodkit"]\n'
        + (SNIPPETS / "security_settings.py").read_text()
        + f"\nSECRET_KEY = {get_random_secret_key()!r}\n"
        + 'DEBUG = False\nALLOWED_HOSTS = ["api.example.com"]\n'
        + mailers
    )
    passed = _deploy_check(tmp_path)
    assert passed.returncode == 0, passed.stderr
    assert "no issues" in passed.stdout
    # The same project with a day-long session fails on django-prodkit's own deploy check: they did run.
    failed = _deploy_check(tmp_path, SESSION_COOKIE_AGE="86400")
    assert failed.returncode != 0
    assert "prodkit.W010" in failed.stderr


def test_hsts_preload_snippet_is_the_last_ramp_up_step() -> None:
    namespace = run_snippet("security_hsts_preload.py")
    assert namespace["SECURE_HSTS_SECONDS"] == HSTS_RAMP_UP[-1] == 31536000
    assert namespace["SECURE_HSTS_PRELOAD"] is True
    assert namespace["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert namespace["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


# --- URLs, endpoints and their JSON ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_health_urls_serve_the_documented_json(monkeypatch: pytest.MonkeyPatch) -> None:
    with override_settings(ROOT_URLCONF=urlconf_module("health_checks_urls.py", monkeypatch)):
        client = Client()
        liveness = client.get("/api/v1/healthcheck/")
        readiness = client.get("/api/v1/healthcheck/ready/")
    assert liveness.status_code == 200
    assert set(liveness.json()) == set(doc_json("health-checks.md", "uptime_seconds"))
    assert readiness.status_code == 200
    ok = next(block for block in json_blocks("health-checks.md") if block.get("status") == "ok" and "checks" in block)
    assert set(readiness.json()) == set(ok)
    for result in readiness.json()["checks"].values():
        assert set(result) == set(next(iter(ok["checks"].values())))


@pytest.mark.django_db
def test_custom_health_check_decides_readiness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws

    package = types.ModuleType("myproject")
    package.__path__ = []
    health = types.ModuleType("myproject.health")
    run_snippet("health_checks_custom_check.py", health.__dict__)
    monkeypatch.setitem(sys.modules, "myproject", package)
    monkeypatch.setitem(sys.modules, "myproject.health", health)
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }.items():
        monkeypatch.setenv(name, value)
    namespace = run_snippet("health_checks_custom_settings.py", quickstarted_settings(tmp_path))
    prodkit = namespace["PRODKIT"]
    failing = next(block for block in json_blocks("health-checks.md") if block.get("status") == "fail")
    with override_settings(PRODKIT=prodkit), mock_aws():
        assert prodkit_messages(MIDDLEWARE=namespace["MIDDLEWARE"], PRODKIT=prodkit) == []
        missing_bucket = Client().get("/api/v1/healthcheck/ready/")
        import boto3

        boto3.client("s3").create_bucket(Bucket="blog-uploads")
        reachable = Client().get("/api/v1/healthcheck/ready/")
    assert missing_bucket.status_code == 503
    body = missing_bucket.json()
    assert set(body) == set(failing)
    assert body["failing"] == ["myproject.health.s3_reachable"]
    documented_failure = failing["checks"]["myproject.health.s3_reachable"]
    assert set(body["checks"]["myproject.health.s3_reachable"]) == set(documented_failure)
    assert reachable.status_code == 200
    assert reachable.json()["checks"]["myproject.health.s3_reachable"]["status"] == "ok"


@pytest.mark.django_db
def test_metrics_settings_and_urls_serve_the_documented_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    namespace = run_snippet("metrics_settings.py", startproject_settings(tmp_path))
    documented = doc_json("metrics.md", "request_count")
    reset_store()
    try:
        with override_settings(
            MIDDLEWARE=namespace["MIDDLEWARE"],
            PRODKIT=namespace["PRODKIT"],
            ROOT_URLCONF=urlconf_module("metrics_urls.py", monkeypatch),
        ):
            assert prodkit_messages() == []
            client = Client()
            client.get("/api/v1/healthcheck/")
            denied = client.get("/api/v1/metrics/")
            response = client.get("/api/v1/metrics/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    finally:
        reset_store()
    assert denied.status_code == 401
    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(documented)
    assert body["request_count"] == 1
    assert set(body["response_time_ms"]) == set(documented["response_time_ms"])
    assert set(body["error_rate"]) == set(documented["error_rate"])
    (endpoint,) = body["top_endpoints_response_time_ms"].values()
    assert set(endpoint) == set(next(iter(documented["top_endpoints_response_time_ms"].values())))
    assert list(body["top_endpoints"]) == ["GET /api/v1/healthcheck/"]


# --- gunicorn ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        SNIPPETS / "metrics_gunicorn_conf.py",
        SNIPPETS / "cloudwatch_gunicorn_conf.py",
        ROOT / "example_project" / "gunicorn.conf.py",
    ],
    ids=lambda path: path.name,
)
def test_gunicorn_configurations_load_as_gunicorn_loads_them(path: Path) -> None:
    from gunicorn.config import Config

    module = load_config_file(path)
    config = Config()
    # What gunicorn does with a configuration file: every module attribute named like a setting is set.
    for name, value in vars(module).items():
        if name in config.settings:
            config.set(name, value)  # validates the value, and a hook's number of arguments
    for hook in ("on_starting", "child_exit", "worker_exit", "on_exit"):
        assert getattr(module, hook) is getattr(prodkit_gunicorn, hook)
        assert config.settings[hook].get() is getattr(prodkit_gunicorn, hook)


# --- JSON examples -----------------------------------------------------------------------------------------------


def test_every_json_example_parses() -> None:
    blocks = {page.name: JSON_BLOCK.findall(page.read_text()) for page in pages()}
    assert sum(len(found) for found in blocks.values()) >= 8
    for page, found in blocks.items():
        for block in found:
            try:
                json.loads(block)
            except json.JSONDecodeError as exc:
                pytest.fail(f"{page}: {exc}\n{block}")


def test_emf_example_follows_the_specification() -> None:
    schema = json.loads((ROOT / "tests" / "emf.schema.json").read_text())
    jsonschema.validate(doc_json("cloudwatch.md", "_aws"), schema)


def test_sampling_rules_example_is_accepted_by_the_sdk(tmp_path: Path) -> None:
    rules = doc_json("tracing.md", "rules")
    xray = {"ENABLED": True, "CENTRALIZED_SAMPLING": False, "SAMPLING_RULES": rules}
    middleware = run_inline("tracing.md", 0, startproject_settings(tmp_path))["MIDDLEWARE"]
    reset_tracer()
    try:
        with override_settings(PRODKIT={"XRAY": xray}, MIDDLEWARE=middleware):
            assert prodkit_messages() == []  # prodkit.E031 validates the rules with the SDK's LocalSampler
            assert get_tracer() is not None
    finally:
        reset_tracer()  # closes the tracer's socket, and the one aws-xray-sdk opened when imported


def test_iam_policy_example_allows_only_put_metric_data() -> None:
    (statement,) = doc_json("cloudwatch.md", "Statement")["Statement"]
    assert statement["Action"] == "cloudwatch:PutMetricData"
    assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Blog"}}
