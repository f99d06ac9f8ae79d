"""Every code block of the docs is run here, from the Markdown itself, in a realistic context.

How each block is run is said by the marker on the line before it (``tests/doc_blocks.py`` and
``docs/contributing.md`` describe the convention). Settings blocks are executed on top of the settings
``django-admin startproject`` writes and the resulting values are checked against what the page promises (system
checks, ``dictConfig``, ``check --deploy``); URL blocks are routed and requested; gunicorn configurations are loaded
the way gunicorn loads them. The JSON examples in the pages parse, and those that show a real response or log line
have the keys of one produced here.
"""

from __future__ import annotations

import ast
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
from tests.doc_blocks import (
    DOCS,
    KINDS,
    PYTHON,
    ROOT,
    Block,
    all_blocks,
    block,
    blocks_of_kind,
    middleware_order,
    page_blocks,
    pages,
    settings_blocks_in_index_order,
)

STARTPROJECT_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
#: django-prodkit's middleware in the one order every page uses, all above Django's own: the overview's list.
DOCUMENTED_ORDER = middleware_order()
TOKEN = "a-long-random-token"
LITERALINCLUDE = re.compile(r"^```+\{literalinclude\}\s+(\S+)", re.M)
TESTS = Path(__file__).resolve().parent


def json_blocks(page: str) -> list[Any]:
    return [
        json.loads(found.code) for found in page_blocks(DOCS / page) if found.lang == "json" and found.kind != "skip"
    ]


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


def run_block(found: Block | str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute a block in ``namespace`` (a fresh one by default), as if appended to that module.

    Tracebacks name the page and the line of the code in it.
    """
    found = block(found) if isinstance(found, str) else found
    namespace = {"__name__": "doc_block"} if namespace is None else namespace
    exec(compile("\n" * found.line + found.code, found.page, "exec"), namespace)
    return namespace


def quickstarted_settings(tmp_path: Path) -> dict[str, Any]:
    """The settings of a project that followed the quickstart: startproject's, then the quickstart's block."""
    return run_block("quickstart-settings", startproject_settings(tmp_path))


#: The quickstart's blocks: the only ones that write ``MIDDLEWARE`` and ``PRODKIT`` whole.
QUICKSTARTS = {"quickstart-settings", "readme-quickstart"}
#: Blocks that replace one line of the quickstart on purpose: the logging page explains configure_logging's arguments.
REPLACES_A_QUICKSTART_LINE = {"request-ids-logging": {"LOGGING"}}


def assigned_names(code: str) -> set[str]:
    """The names a block assigns whole (``NAME = ...``), not the ones it changes (``NAME[...] =``, ``.insert``)."""
    return {
        target.id
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }


@pytest.fixture
def myproject_health(monkeypatch: pytest.MonkeyPatch) -> None:
    """``myproject.health`` as the health page writes it, importable, for the blocks that name its check."""
    package = types.ModuleType("myproject")
    package.__path__ = []
    health = types.ModuleType("myproject.health")
    run_block("health-custom-check", health.__dict__)
    monkeypatch.setitem(sys.modules, "myproject", package)
    monkeypatch.setitem(sys.modules, "myproject.health", health)


def urlconf_module(found: Block | str, monkeypatch: pytest.MonkeyPatch, base: str = "") -> str:
    """Register a URL block (appended to ``base``) as an importable module and return its dotted name."""
    found = block(found) if isinstance(found, str) else found
    module = types.ModuleType(f"doc_block_urls_{found.page.replace('/', '_').replace('.', '_')}_{found.line}")
    exec(compile(base, "mysite/urls.py", "exec"), module.__dict__)
    run_block(found, module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module.__name__


def startproject_urls() -> str:
    """The ``urls.py`` that ``django-admin startproject mysite`` writes."""
    template = Path(django.__file__).parent / "conf" / "project_template" / "project_name" / "urls.py-tpl"
    context = {"project_name": "mysite", "docs_version": "5.2"}
    source = Engine().from_string(template.read_text()).render(Context(context, autoescape=False))
    # The tests' settings do not install the admin; its route is startproject's, not the block's.
    source = source.replace("from django.contrib import admin\n", "")
    return re.sub(r"path\(['\"]admin/['\"], admin\.site\.urls\),", "", source)


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


# --- every block is marked, and run ------------------------------------------------------------------------------


def test_every_python_block_is_marked_with_how_it_is_tested() -> None:
    unmarked = [found.where for found in all_blocks() if found.lang in PYTHON and found.kind is None]
    assert unmarked == [], "mark each with <!-- test: KIND [NAME] --> (see docs/contributing.md)"


def test_every_marker_is_well_formed() -> None:
    problems = []
    for found in all_blocks():
        if found.marker is None or not found.marker.startswith("<!-- test"):
            continue
        if found.kind is None:
            problems.append(f"{found.where}: cannot read {found.marker!r}")
        elif found.kind not in KINDS:
            problems.append(f"{found.where}: unknown kind {found.kind!r}")
        elif found.kind == "custom" and not found.name:
            problems.append(f"{found.where}: a custom block needs a NAME that a test uses")
        elif found.kind == "skip" and not found.reason:
            problems.append(f"{found.where}: say why it is not run: <!-- test: skip -- REASON -->")
        elif found.kind != "skip" and found.lang not in PYTHON | {"json"}:
            problems.append(f"{found.where}: a {found.lang or 'plain'} block cannot be run as {found.kind!r}")
    names = [found.name for found in all_blocks() if found.name]
    problems += [f"{name} names more than one block" for name in sorted({n for n in names if names.count(n) > 1})]
    assert problems == []


def test_every_named_block_is_used_by_a_test() -> None:
    sources = "".join(path.read_text() for path in TESTS.glob("test_*.py"))
    unused = [
        f"{found.where}: {found.name}" for found in all_blocks() if found.name and f'"{found.name}"' not in sources
    ]
    assert unused == []


def test_no_page_includes_code_from_another_file() -> None:
    includes = {
        (found.relative_to(ROOT).as_posix(), target)
        for found in pages()
        for target in LITERALINCLUDE.findall(found.read_text())
    }
    assert includes == set(), "write the code inline, in a marked block, or link the file (see docs/contributing.md)"
    assert not (DOCS / "snippets").exists()


def test_only_the_quickstart_writes_middleware_or_prodkit_whole() -> None:
    """A page's snippet pasted below the quickstart must change its settings, not replace them."""
    whole = {"MIDDLEWARE", "PRODKIT", "LOGGING", "INSTALLED_APPS"}
    offenders = [
        f"{found.where}: {sorted(names)}"
        for found in all_blocks()
        if found.lang in PYTHON and found.kind != "skip" and found.name not in QUICKSTARTS
        if (names := assigned_names(found.code) & whole - REPLACES_A_QUICKSTART_LINE.get(found.name or "", set()))
    ]
    assert offenders == [], "write MIDDLEWARE.insert(...) or PRODKIT['KEY'] = ... (see docs/contributing.md)"
    # Inline code and prose too: `PRODKIT = {...}` or `MIDDLEWARE = [...]` anywhere outside the quickstarts.
    prose = re.compile(r"\b(?:PRODKIT = \{(?!\.\.\.\})|MIDDLEWARE = \[(?!\.\.\.\]))")
    quickstart_code = {block(name).code for name in QUICKSTARTS}
    mentions = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in pages()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if prose.search(line) and not any(line in code for code in quickstart_code)
    ]
    assert mentions == []


def test_the_readme_quickstart_is_the_quickstart() -> None:
    def settings_lines(code: str) -> list[str]:
        return [line for line in code.split("# urls.py")[0].strip().splitlines() if not line.startswith("# ")]

    assert settings_lines(block("readme-quickstart").code) == settings_lines(block("quickstart-settings").code)


def test_the_marker_reader_sees_what_it_should(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- test: custom some-name -->\n```python\nx = 1\n```\n\n"
        "<!-- test: skip -- a fragment -->\n````python\n```\ny\n````\n"
        "text\n```python\nz = 3\n```\n"
    )
    marked, skipped, unmarked = page_blocks(page, tmp_path)
    assert (marked.kind, marked.name, marked.code, marked.line) == ("custom", "some-name", "x = 1\n", 2)
    assert (skipped.kind, skipped.reason, skipped.code) == ("skip", "a fragment", "```\ny\n")
    assert (unmarked.kind, unmarked.lang, unmarked.code) == (None, "python", "z = 3\n")


def test_every_page_is_listed_in_the_index() -> None:
    spec = importlib.util.spec_from_file_location("docs_conf", DOCS / "conf.py")
    assert spec is not None
    assert spec.loader is not None
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    toctrees = conf.index_toctrees((DOCS / "index.md").read_text())
    listed = re.findall(r"^([\w-]+)$", toctrees, re.M)
    assert sorted(listed) == sorted(path.stem for path in DOCS.glob("*.md") if path.name != "index.md")
    assert ":caption: Getting started" in toctrees


def test_the_middleware_diagram_is_drawn_from_the_overview_block(tmp_path: Path) -> None:
    script = DOCS / "middleware_diagram.py"
    spec = importlib.util.spec_from_file_location("middleware_diagram", script)
    assert spec is not None
    assert spec.loader is not None
    diagram = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diagram)
    layers = diagram.layers((DOCS / "overview.md").read_text())
    assert layers[-1] == diagram.DJANGO
    ours = layers[:-1]
    assert [f"django_prodkit.middleware.{layer}" for layer in ours] == DOCUMENTED_ORDER
    assert set(ours) <= set(diagram.ROLES)
    assert diagram.OUTPUT.read_text() == diagram.draw(layers), "run: python docs/middleware_diagram.py"
    assert "](_static/middleware.svg)" in (DOCS / "overview.md").read_text()


# --- settings ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("found", blocks_of_kind("settings"), ids=lambda found: found.where)
def test_settings_blocks_pass_the_checks_and_serve_a_probe(
    found: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, myproject_health: None
) -> None:
    monkeypatch.setenv("PRODKIT_METRICS_TOKENS", TOKEN)  # as the quickstart says
    namespace = quickstarted_settings(tmp_path)
    quickstart_prodkit = dict(namespace["PRODKIT"])
    # As a reader pastes them: the quickstart's settings, then the page's blocks down to this one.
    for earlier in [other for other in blocks_of_kind("settings") if other.page == found.page]:
        run_block(earlier, namespace)
        if earlier == found:
            break
    middleware: list[str] = namespace["MIDDLEWARE"]
    ours = [entry for entry in middleware if entry.startswith("django_prodkit.")]
    assert ours == [entry for entry in DOCUMENTED_ORDER if entry in ours]
    assert middleware == ours + STARTPROJECT_MIDDLEWARE
    prodkit = namespace["PRODKIT"]
    assert prodkit.items() >= quickstart_prodkit.items(), "a page's snippet must keep the quickstart's keys"
    assert unknown_keys(prodkit) == []
    assert type_errors(prodkit) == []
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
    namespace = run_block("tracing-settings", quickstarted_settings(tmp_path))
    middleware: list[str] = namespace["MIDDLEWARE"]
    ours = [entry for entry in middleware if entry.startswith("django_prodkit.")]
    assert ours == [entry for entry in DOCUMENTED_ORDER if entry in ours]
    assert middleware == ours + STARTPROJECT_MIDDLEWARE
    monkeypatch.setenv("ENABLE_OTEL", "true")  # as the page says
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    assert prodkit_messages(MIDDLEWARE=middleware, PRODKIT=namespace["PRODKIT"]) == []
    direct = run_block("tracing-direct", quickstarted_settings(tmp_path))["PRODKIT"]
    assert prodkit_messages(MIDDLEWARE=middleware, PRODKIT=direct) == []
    monkeypatch.delenv("ENABLE_OTEL")
    annotate = run_block("tracing-annotate")["annotate"]
    run_task = run_block("tracing-task")["run_task"]
    request = types.SimpleNamespace()
    annotate(request, "t-1")  # tracing off: no prodkit_trace, nothing to do
    with override_settings(MIDDLEWARE=middleware, PRODKIT=namespace["PRODKIT"]):
        assert run_task("send_mail", {}, lambda: "sent") == "sent"
        response = Client().get("/api/v1/healthcheck/")
    assert response.status_code == 200


def test_logging_snippet_writes_the_documented_json_lines(
    log_lines: Callable[[dict[str, Any]], Callable[[], list[dict[str, Any]]]],
) -> None:
    config = run_block("request-ids-logging")["LOGGING"]
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
    documented = doc_json("request-ids.md", "route")
    read = log_lines(run_block("request-ids-logging")["LOGGING"])
    Client().get("/api/v1/items/blue-shoe/", HTTP_X_REQUEST_ID="req-7")
    (line,) = [record for record in read() if record["event"] == documented["event"]]
    assert set(line) == set(documented)
    assert line["route"] == "/api/v1/items/<slug:slug>/"
    assert line["request_id"] == "req-7"


def test_get_request_id_snippet() -> None:
    assert run_block("get-request-id")["request_id"] is None
    seen: dict[str, Any] = {}

    def view(request: Any) -> Any:
        seen.update(run_block("get-request-id"))
        return HttpResponse()

    response = RequestIDMiddleware(view)(RequestFactory().get("/"))
    assert seen["request_id"] == response.headers["X-Request-ID"]
    assert run_block("get-request-id")["request_id"] is None


def _deploy_check(project: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PRODKIT", "SESSION_", "ENABLE_"))}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=project,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def production_project(tmp_path: Path, *blocks: str) -> Path:
    """``startproject`` with the lines every production settings module changes, then ``blocks`` appended.

    The secret key comes from ``DJANGO_SECRET_KEY``, ``DEBUG`` is off and the host is named (the quickstart's step 5
    changes the same two lines).
    """
    call_command("startproject", "mysite", str(tmp_path))
    settings_py = tmp_path / "mysite" / "settings.py"
    text = settings_py.read_text().replace("from pathlib import Path\n", "import os\nfrom pathlib import Path\n", 1)
    for name, value in {
        "SECRET_KEY": 'os.environ["DJANGO_SECRET_KEY"]',
        "DEBUG": "False",
        "ALLOWED_HOSTS": '["api.example.com"]',
    }.items():
        text, changed = re.subn(rf"^{name} = .*$", f"{name} = {value}", text, count=1, flags=re.M)
        assert changed == 1, f"startproject's settings.py has no {name}"
    # Django 6.1's startproject sets a console MAILERS backend, which its own deploy check (mail.E001) rejects;
    # a real deployment configures SMTP (or another real backend), which is outside these helpers.
    if "MAILERS" in text:
        text += '\nMAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend"}}\n'
    settings_py.write_text(text + "".join(f"\n{code}" for code in blocks))
    return tmp_path


def test_security_snippet_passes_check_deploy(tmp_path: Path) -> None:
    project = production_project(tmp_path, 'INSTALLED_APPS += ["django_prodkit"]\n', block("security-settings").code)
    passed = _deploy_check(project, DJANGO_SECRET_KEY=get_random_secret_key())
    assert passed.returncode == 0, passed.stderr
    assert "no issues" in passed.stdout
    # The same project with a day-long session fails on django-prodkit's own deploy check: they did run.
    failed = _deploy_check(project, DJANGO_SECRET_KEY=get_random_secret_key(), SESSION_COOKIE_AGE="86400")
    assert failed.returncode != 0
    assert "prodkit.W010" in failed.stderr


def test_security_snippet_leaves_development_on_plain_http(tmp_path: Path) -> None:
    """Pasted as shown, the hardening applies with DEBUG off only: runserver keeps answering over plain HTTP."""

    def answer(debug: bool) -> tuple[int, dict[str, Any]]:
        namespace = quickstarted_settings(tmp_path)
        namespace["DEBUG"] = debug
        run_block("security-settings", namespace)
        hardening = {k: v for k, v in namespace.items() if k.startswith(("SECURE_", "SESSION_", "CSRF_"))}
        with override_settings(MIDDLEWARE=namespace["MIDDLEWARE"], **hardening):
            return Client().get("/api/v1/items/blue-shoe/").status_code, hardening

    development, development_settings = answer(debug=True)
    production, production_settings = answer(debug=False)
    assert development == 200
    assert development_settings == {}
    assert production == 301  # plain HTTP is sent to https://
    assert production_settings["SECURE_SSL_REDIRECT"] is True
    assert production_settings["SESSION_COOKIE_SECURE"] is True


def test_hsts_preload_snippet_is_the_last_ramp_up_step(tmp_path: Path) -> None:
    namespace = quickstarted_settings(tmp_path)
    namespace["DEBUG"] = False
    run_block("security-settings", namespace)
    run_block("hsts-preload", namespace)
    assert namespace["SECURE_HSTS_SECONDS"] == HSTS_RAMP_UP[-1] == 31536000
    assert namespace["SECURE_HSTS_PRELOAD"] is True
    assert namespace["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert namespace["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


#: The pages a reader follows into a project of their own; each must have settings blocks in the paste below.
FEATURE_PAGES = {"metrics", "database", "background-tasks", "health-checks", "tracing", "cloudwatch", "security"}


@pytest.mark.timeout(120)  # two subprocesses, about 2 s: run in every environment, as the pages are for each Django
def test_every_page_pasted_after_the_quickstart(tmp_path: Path) -> None:
    """The quickstart, then every page's settings blocks in the index's order, in one fresh startproject."""
    pasted = settings_blocks_in_index_order()
    assert {Path(found.page).stem for found in pasted} >= FEATURE_PAGES
    project = production_project(
        tmp_path, block("quickstart-settings").code, *(f"# {found.where}\n{found.code}" for found in pasted)
    )
    urls_py = project / "mysite" / "urls.py"
    urls_py.write_text(urls_py.read_text() + "\n" + block("quickstart-urls").code)
    (project / "myproject").mkdir()  # the health page's own check, where its settings block says it is
    (project / "myproject" / "__init__.py").write_text("")
    (project / "myproject" / "health.py").write_text(block("health-custom-check").code)
    env = {"DJANGO_SECRET_KEY": get_random_secret_key(), "PRODKIT_METRICS_TOKENS": TOKEN}

    deploy = _deploy_check(project, **env)
    assert deploy.returncode == 0, deploy.stderr
    assert "no issues" in deploy.stdout

    dump = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; import json; "
            "print(json.dumps({'MIDDLEWARE': settings.MIDDLEWARE, 'PRODKIT': settings.PRODKIT}))",
        ],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "mysite.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    final = json.loads(dump.stdout)
    # Each of ours once, in the overview's order, above startproject's own.
    assert final["MIDDLEWARE"] == DOCUMENTED_ORDER + STARTPROJECT_MIDDLEWARE
    quickstart = run_block("quickstart-settings", startproject_settings(tmp_path))["PRODKIT"]
    assert final["PRODKIT"].items() >= quickstart.items(), "a page's snippet dropped or changed a quickstart key"


# --- URLs, endpoints and their JSON ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_health_urls_serve_the_documented_json(monkeypatch: pytest.MonkeyPatch) -> None:
    with override_settings(ROOT_URLCONF=urlconf_module("health-urls", monkeypatch)):
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
def test_custom_health_check_decides_readiness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, myproject_health: None
) -> None:
    from moto import mock_aws

    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
    }.items():
        monkeypatch.setenv(name, value)
    namespace = run_block("health-custom-settings", quickstarted_settings(tmp_path))
    prodkit = namespace["PRODKIT"]
    failing = next(block for block in json_blocks("health-checks.md") if block.get("status") == "fail")
    # The second probe must see the bucket created a moment after the first, not the first's reused report.
    with override_settings(PRODKIT={**prodkit, "HEALTH_CHECK_REUSE_SECONDS": 0.0}), mock_aws():
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
    namespace = run_block("metrics-settings", quickstarted_settings(tmp_path))
    documented = doc_json("metrics.md", "request_count")
    reset_store()
    try:
        with override_settings(
            MIDDLEWARE=namespace["MIDDLEWARE"],
            PRODKIT=namespace["PRODKIT"],
            ROOT_URLCONF=urlconf_module("metrics-urls", monkeypatch),
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


def gunicorn_module(source: Block | Path) -> types.ModuleType:
    """A configuration file, or a block of one, as the module gunicorn makes of it."""
    if isinstance(source, Path):
        return load_config_file(source)
    module = types.ModuleType(f"doc_block_gunicorn_{source.line}")
    run_block(source, module.__dict__)
    return module


@pytest.mark.parametrize(
    "source",
    [*blocks_of_kind("gunicorn"), ROOT / "example_project" / "gunicorn.conf.py"],
    ids=lambda source: source.where if isinstance(source, Block) else source.name,
)
def test_gunicorn_configurations_load_as_gunicorn_loads_them(source: Block | Path) -> None:
    from gunicorn.config import Config

    module = gunicorn_module(source)
    config = Config()
    # What gunicorn does with a configuration file: every module attribute named like a setting is set.
    for name, value in vars(module).items():
        if name in config.settings:
            config.set(name, value)  # validates the value, and a hook's number of arguments
    for hook in ("on_starting", "child_exit", "worker_exit", "on_exit"):
        assert getattr(module, hook) is getattr(prodkit_gunicorn, hook)
        assert config.settings[hook].get() is getattr(prodkit_gunicorn, hook)


def test_deploying_page_shows_the_example_gunicorn_conf() -> None:
    source = (ROOT / "example_project" / "gunicorn.conf.py").read_text()
    assert block("example-gunicorn-conf").code == source[source.index("import multiprocessing") :]


# --- URL confs and plain Python ---------------------------------------------------------------------------------


def added_routes(urlconf: str) -> list[str]:
    """The paths of every route without a converter, outside startproject's admin."""
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns: list[Any], prefix: str) -> Iterator[str]:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver) and not route.startswith("admin/"):
                yield from walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and "<" not in route:
                yield "/" + route

    return list(walk(get_resolver(urlconf).url_patterns, ""))


@pytest.mark.django_db
@pytest.mark.parametrize("found", blocks_of_kind("urls"), ids=lambda found: found.where)
def test_url_blocks_serve_every_route_they_add(found: Block, monkeypatch: pytest.MonkeyPatch) -> None:
    urlconf = urlconf_module(found, monkeypatch, base=startproject_urls())
    routes = added_routes(urlconf)
    assert routes, f"{found.where} adds no route"
    with override_settings(ROOT_URLCONF=urlconf):
        client = Client()
        statuses = {route: client.get(route).status_code for route in routes}
    assert {route: status for route, status in statuses.items() if status == 404 or status >= 500} == {}


@pytest.mark.parametrize("found", blocks_of_kind("python"), ids=lambda found: found.where)
def test_python_blocks_run(found: Block) -> None:
    run_block(found)


# --- JSON examples -----------------------------------------------------------------------------------------------


def test_every_json_example_parses() -> None:
    examples = [found for found in all_blocks() if found.lang == "json" and found.kind != "skip"]
    assert len(examples) >= 8
    for found in examples:
        try:
            json.loads(found.code)
        except json.JSONDecodeError as exc:
            pytest.fail(f"{found.where}: {exc}\n{found.code}")


def test_emf_example_follows_the_specification() -> None:
    schema = json.loads((ROOT / "tests" / "emf.schema.json").read_text())
    jsonschema.validate(doc_json("cloudwatch.md", "_aws"), schema)


def test_sampling_rules_example_is_accepted_by_the_sdk(tmp_path: Path) -> None:
    rules = doc_json("tracing.md", "rules")
    xray = {"ENABLED": True, "CENTRALIZED_SAMPLING": False, "SAMPLING_RULES": rules}
    middleware = run_block("tracing-settings", quickstarted_settings(tmp_path))["MIDDLEWARE"]
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
