"""Tracing without a daemon: header parsing, the daemon address, the emitter, checks, and the off switch."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.checks import CheckMessage
from django.test import Client

from django_prodkit.tracing.backend import reset_tracer
from django_prodkit.tracing.checks import check_tracing
from django_prodkit.tracing.emitter import UDPDaemonEmitter, daemon_address_from_env, parse_daemon_address
from django_prodkit.tracing.header import new_trace_id, parse_trace_header, response_header

ROOT = Path(__file__).resolve().parent.parent
TRACE_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
PARENT = "53995c3f42cd8ad8"
XRAY_MIDDLEWARE = "django_prodkit.middleware.XRayMiddleware"


@pytest.fixture(autouse=True)
def _fresh_tracer() -> Iterator[None]:
    reset_tracer()
    yield
    reset_tracer()


def test_a_full_header_is_parsed() -> None:
    header = parse_trace_header(f"Root={TRACE_ROOT};Parent={PARENT};Sampled=1;Lineage=a87bd80c:0")
    assert header is not None
    assert (header.root, header.parent, header.sampled, header.decision) == (TRACE_ROOT, PARENT, "1", True)
    assert header.data == (("Lineage", "a87bd80c:0"),)


def test_alb_self_field_is_dropped_and_decisions_read() -> None:
    header = parse_trace_header(f"Self=1-67891234-12456789abcdef012345678;Root={TRACE_ROOT};Sampled=0")
    assert header is not None
    assert (header.root, header.parent, header.data, header.decision) == (TRACE_ROOT, None, (), False)
    requested = parse_trace_header(f"Root={TRACE_ROOT};Sampled=?")
    assert requested is not None
    assert requested.decision is None


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "Root=1-abc",
        f"Root={TRACE_ROOT.upper()}",
        f"Root={TRACE_ROOT};Parent=xyz",
        f"Parent={PARENT}",
        f"Root={TRACE_ROOT};Sampled=yes",
        f"Root={TRACE_ROOT};Root={TRACE_ROOT}",
        f"Root={TRACE_ROOT}\r\nX-Injected: 1",
        f"Root={TRACE_ROOT};Lineage=" + "a" * 2000,
    ],
)
def test_malformed_headers_are_rejected_whole(value: str | None) -> None:
    assert parse_trace_header(value) is None


def test_new_trace_ids_are_valid_and_response_header_format() -> None:
    trace_id = new_trace_id()
    assert parse_trace_header(f"Root={trace_id}") is not None
    assert trace_id != new_trace_id()
    assert response_header(TRACE_ROOT, True, False) == f"Root={TRACE_ROOT}"
    assert response_header(TRACE_ROOT, False, True) == f"Root={TRACE_ROOT};Sampled=0"


def test_daemon_address_forms_as_the_sdk_defines_them() -> None:
    assert daemon_address_from_env({}).udp == ("127.0.0.1", 2000)
    both = parse_daemon_address("tcp:10.0.0.1:2001 udp:10.0.0.2:2002")
    assert (both.tcp, both.udp) == (("10.0.0.1", 2001), ("10.0.0.2", 2002))
    assert parse_daemon_address("xray.internal:2000").udp == ("xray.internal", 2000)
    for bad in ("localhost", "host:port", "a:1 b:2", "udp:h:1 udp:h:2", "h:70000", "tcp:h:1 udp:h:2 x:h:3"):
        with pytest.raises(ValueError, match="AWS_XRAY_DAEMON_ADDRESS"):
            parse_daemon_address(bad)


class _Doc:
    def serialize(self) -> str:
        return json.dumps({"name": "x"})


def test_unresolvable_daemon_warns_once_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    emitter = UDPDaemonEmitter(("xray-daemon.invalid", 2000))
    with caplog.at_level(logging.WARNING, logger="django_prodkit.tracing"):
        for _ in range(3):
            emitter.send_entity(_Doc())
    emitter.close()
    assert [r.getMessage() for r in caplog.records if "does not resolve" in r.getMessage()] == [
        caplog.records[0].getMessage()
    ]
    assert len(caplog.records) == 1


def test_emitter_sends_the_protocol_header_then_the_document() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:
        daemon.bind(("127.0.0.1", 0))
        daemon.settimeout(5)
        emitter = UDPDaemonEmitter(daemon.getsockname())
        emitter.send_entity(_Doc())
        emitter.close()
        header, body = daemon.recv(65536).split(b"\n", 1)
    assert json.loads(header) == {"format": "json", "version": 1}
    assert json.loads(body) == {"name": "x"}


def _ids(messages: list[CheckMessage]) -> list[str]:
    return sorted(str(m.id) for m in messages)


def test_checks_pass_when_tracing_is_off_and_on_with_defaults(settings: pytest.FixtureRequest) -> None:
    assert check_tracing() == []
    settings.PRODKIT = {"XRAY": {"ENABLED": True}}  # type: ignore[attr-defined]
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, XRAY_MIDDLEWARE]  # type: ignore[attr-defined]
    assert check_tracing() == []


def test_value_checks(settings: pytest.FixtureRequest) -> None:
    settings.PRODKIT = {  # type: ignore[attr-defined]
        "XRAY": {"CONTEXT_MISSING": "SHOUT", "PATCH_MODULES": ["requests", "left-pad"], "PLUGINS": ["MarsPlugin"]}
    }
    assert _ids(check_tracing()) == ["prodkit.E032", "prodkit.E033", "prodkit.E035"]


def test_enabled_checks(settings: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", "localhost")
    monkeypatch.setenv("AWS_XRAY_SDK_ENABLED", "false")
    settings.PRODKIT = {"XRAY": {"ENABLED": True, "PATCH_MODULES": ["pymongo"]}}  # type: ignore[attr-defined]
    assert _ids(check_tracing()) == ["prodkit.E034", "prodkit.W030", "prodkit.W031", "prodkit.W032"]


def test_sampling_rules_checks(settings: pytest.FixtureRequest, tmp_path: Path) -> None:
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, XRAY_MIDDLEWARE]  # type: ignore[attr-defined]
    settings.PRODKIT = {"XRAY": {"ENABLED": True, "SAMPLING_RULES": str(tmp_path / "missing.json")}}  # type: ignore[attr-defined]
    assert _ids(check_tracing()) == ["prodkit.E031"]
    (tmp_path / "rules.json").write_text(json.dumps({"version": 2, "rules": []}))
    settings.PRODKIT = {"XRAY": {"ENABLED": True, "SAMPLING_RULES": str(tmp_path / "rules.json")}}  # type: ignore[attr-defined]
    [error] = check_tracing()
    assert error.id == "prodkit.E031"
    assert "default rule" in error.msg
    settings.PRODKIT = {
        "XRAY": {"ENABLED": True, "SAMPLING_RULES": {"version": 2, "default": {"fixed_target": 1, "rate": 0.1}}}
    }  # type: ignore[attr-defined]
    assert check_tracing() == []


def test_missing_sdk_is_a_check_error_and_requests_still_work(
    settings: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules is how Python spells "not importable": find_spec() and import both see it.
    monkeypatch.setitem(sys.modules, "aws_xray_sdk", None)
    monkeypatch.setenv("ENABLE_XRAY", "true")
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, XRAY_MIDDLEWARE]  # type: ignore[attr-defined]
    [error] = check_tracing()
    assert error.id == "prodkit.E030"
    assert error.hint == "Install the extra: pip install django-prodkit[xray]"
    response = Client().get("/api/v1/hello/")
    assert response.status_code == 200
    assert "X-Amzn-Trace-Id" not in response


OFF_SCRIPT = """
import json, sys
import django
from django.conf import settings
django.setup()
from django.core.management import call_command
from django.test import Client
from django.test.utils import override_settings
call_command("check", stdout=open("/dev/null", "w"))
with override_settings(MIDDLEWARE=["django_prodkit.middleware.XRayMiddleware", *settings.MIDDLEWARE]):
    response = Client().get("/api/v1/hello/")
print(json.dumps({
    "status": response.status_code,
    "header": response.get("X-Amzn-Trace-Id"),
    "imported": sorted(name for name in sys.modules if name.startswith("aws_xray_sdk")),
}))
"""


def _run_off_script(enable: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENABLE_XRAY", "AWS_XRAY"))}
    env.update({"DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)})
    # A port nobody listens on: the "on" run must not reach anything real.
    env["AWS_XRAY_DAEMON_ADDRESS"] = "127.0.0.1:9"
    if enable is not None:
        env["ENABLE_XRAY"] = enable
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", OFF_SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_off_means_aws_xray_sdk_is_never_imported() -> None:
    off = _run_off_script(None)
    assert off == {"status": 200, "header": None, "imported": []}
    explicit_off = _run_off_script("false")
    assert explicit_off["imported"] == []
    on = _run_off_script("true")
    assert on["status"] == 200
    assert str(on["header"]).startswith("Root=1-")
    assert "aws_xray_sdk" in list(on["imported"])  # type: ignore[call-overload]
