"""``manage.py healthcheck``: in-process checks or a URL probe, one line, exit 0 or 1."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.test_metrics_e2e import free_port

ROOT = Path(__file__).resolve().parent.parent


def raises() -> None:
    raise RuntimeError("queue is 900 messages behind")


def healthcheck(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command("healthcheck", *args, stdout=out)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()
    return 0, out.getvalue()


@pytest.fixture
def db_open(django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():
        yield


def test_readiness_in_process_passes_and_names_the_checks(settings: Any, db_open: None, tmp_path: Path) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)}
    }
    code, out = healthcheck()
    assert code == 0
    assert out.startswith("ok: ready (database:default ")
    assert "cache:default" in out
    assert out.count("\n") == 1


def test_readiness_in_process_fails_with_the_reason(settings: Any, db_open: None) -> None:
    settings.PRODKIT = {"HEALTH_CHECKS": ["tests.test_healthcheck_command.raises"], "HEALTH_CHECK_CACHES": []}
    code, out = healthcheck("--ready")
    assert code == 1
    assert out == (
        "fail: not ready: tests.test_healthcheck_command.raises: RuntimeError: queue is 900 messages behind\n"
    )


def test_liveness_touches_nothing(settings: Any) -> None:
    # The database stays blocked by pytest-django: liveness must not need it.
    settings.PRODKIT = {"HEALTH_CHECKS": ["tests.test_healthcheck_command.raises"]}
    assert healthcheck("--live") == (0, "ok: live (settings and apps loaded)\n")


class Probed(BaseHTTPRequestHandler):
    """Answers with the status the server was given and records the paths asked for."""

    def do_GET(self) -> None:
        server: Any = self.server
        server.paths.append(self.path)
        body = b'{"status": "fail", "failing": ["database:default"]}'
        self.send_response(server.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def http_server() -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), Probed)
    server.paths, server.status = [], 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_url_probe_appends_the_endpoint_path_to_a_bare_url(http_server: Any) -> None:
    base = f"http://127.0.0.1:{http_server.server_address[1]}"
    code, out = healthcheck("--url", base)
    assert code == 0
    assert out.startswith(f"ok: {base}/api/v1/healthcheck/ready/ answered 200 in ")
    assert healthcheck("--live", "--url", base + "/")[0] == 0
    assert healthcheck("--url", base + "/custom/health?x=1")[0] == 0
    assert http_server.paths == ["/api/v1/healthcheck/ready/", "/api/v1/healthcheck/", "/custom/health?x=1"]


def test_url_probe_fails_on_a_503_and_on_no_server(http_server: Any) -> None:
    http_server.status = 503
    port = http_server.server_address[1]
    code, out = healthcheck("--url", f"http://127.0.0.1:{port}", "--timeout", "3")
    assert code == 1
    assert "answered 503" in out
    assert '"failing": ["database:default"]' in out
    nothing = free_port()
    code, out = healthcheck("--url", f"http://127.0.0.1:{nothing}", "--timeout", "3")
    assert code == 1
    assert out.startswith(f"fail: http://127.0.0.1:{nothing}/api/v1/healthcheck/ready/: ConnectionRefusedError")
    assert healthcheck("--url", "ftp://example.com/")[0] == 1


def test_bad_timeout_is_a_usage_error() -> None:
    with pytest.raises(CommandError, match="--timeout"):
        call_command("healthcheck", "--timeout", "0")


@pytest.mark.timeout(60)
def test_exit_status_from_the_command_line() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    env.pop("PYTHONDEVMODE", None)
    ok = subprocess.run(
        [sys.executable, "-m", "django", "healthcheck"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=50
    )
    assert (ok.returncode, ok.stdout.startswith("ok: ready"), ok.stderr) == (0, True, "")
    refused = subprocess.run(
        [sys.executable, "-m", "django", "healthcheck", "--url", "http://127.0.0.1:9", "--timeout", "2"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert refused.returncode == 1
    assert refused.stdout.startswith("fail: ")
    assert refused.stdout.count("\n") == 1
