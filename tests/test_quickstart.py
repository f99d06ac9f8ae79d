"""Follow docs/quickstart.md step by step in a fresh ``django-admin startproject`` project."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.doc_blocks import block

# Builds a project or a wheel in a subprocess: run where the server tests run (tox's corner environments).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "quickstart-token-1234567890"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def _wait_until_up(url: str, server: subprocess.Popen[str], deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"runserver exited with {server.returncode}")
        try:
            _get(url)
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail("runserver did not answer in time")


def _readme_quickstart() -> tuple[str, str]:
    """The settings and urls parts of the README's quickstart block."""
    settings_part, urls_part = block("readme-quickstart").code.split("# urls.py\n")
    return settings_part, urls_part


QUICKSTARTS = {
    "docs": lambda: (block("quickstart-settings").code, block("quickstart-urls").code),
    "readme": _readme_quickstart,
}


def _run(project: Path, env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *command], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )


def _serve(project: Path, env: dict[str, str], requests: Callable[[str], None]) -> list[str]:
    """Run ``runserver`` as the page says, make ``requests`` against it, and return what it printed."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as server:
        try:
            _wait_until_up(f"{base}/api/v1/healthcheck/", server)
            requests(base)
        finally:
            server.terminate()
            output, _ = server.communicate(timeout=30)
    return output.splitlines()


def _set_lines(settings_py: Path, code: str) -> None:
    """Change the lines of ``settings.py`` that ``code`` assigns, as the page says to."""
    text = settings_py.read_text()
    for line in code.splitlines():
        name = line.split(" = ")[0]
        text, changed = re.subn(rf"^{name} = .*$", line, text, count=1, flags=re.M)
        assert changed == 1, f"startproject's settings.py has no {name}"
    settings_py.write_text(text)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("source", sorted(QUICKSTARTS))
def test_quickstart_in_a_fresh_startproject(tmp_path: Path, source: str) -> None:
    django_admin = [sys.executable, "-m", "django"]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PRODKIT_METRICS_TOKENS"] = TOKEN
    subprocess.run([*django_admin, "startproject", "mysite"], cwd=tmp_path, check=True, env=env, timeout=60)
    project = tmp_path / "mysite"
    settings_py = project / "mysite" / "settings.py"
    urls_py = project / "mysite" / "urls.py"
    settings_part, urls_part = QUICKSTARTS[source]()
    settings_py.write_text(settings_py.read_text() + "\n" + settings_part)
    urls_py.write_text(urls_py.read_text() + "\n" + urls_part)

    check = _run(project, env, "check")
    assert check.returncode == 0, check.stderr
    assert "prodkit." not in check.stdout + check.stderr
    migrate = _run(project, env, "migrate")
    assert migrate.returncode == 0, migrate.stderr

    def first_requests(base: str) -> None:
        status, headers, body = _get(f"{base}/api/v1/healthcheck/")
        assert status == 200
        assert json.loads(body)["status"] == "ok"
        assert re.fullmatch(r"[0-9a-f-]{36}", headers["X-Request-ID"])

        status, headers, _ = _get(f"{base}/admin/login/", {"X-Request-ID": "my-first-request"})
        assert status == 200
        assert headers["X-Request-ID"] == "my-first-request"

        assert _get(f"{base}/api/v1/metrics/")[0] == 401
        status, _, body = _get(f"{base}/api/v1/metrics/", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200
        metrics = json.loads(body)
        assert metrics["request_count"] >= 3
        assert metrics["top_endpoints"]["GET /admin/login/"] == 1
        assert metrics["top_endpoints"]["GET /api/v1/healthcheck/"] >= 1  # counted, though not logged

    access_lines = [line for line in _serve(project, env, first_requests) if "http_request" in line]
    assert any("request_id=my-first-request" in line and "route=/admin/login/" in line for line in access_lines)
    assert not [line for line in access_lines if "healthcheck" in line], "the page says probes are not logged"

    if source == "docs":  # step 5: JSON lines once DEBUG is off and the host is allowed
        _set_lines(settings_py, block("quickstart-production").code)

        def login_page(base: str) -> None:
            assert _get(f"{base}/admin/login/", {"X-Request-ID": "json-request"})[0] == 200

        printed = _serve(project, env, login_page)
        lines = [json.loads(line) for line in printed if line.startswith("{")]
        (access,) = [line for line in lines if line.get("event") == "http_request"]
        assert access["request_id"] == "json-request"
        assert access["route"] == "/admin/login/"
        assert access["status"] == 200
