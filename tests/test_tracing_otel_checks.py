"""The OpenTelemetry and outbound system checks (prodkit.E060-E064, W060-W062)."""

from __future__ import annotations

from typing import Any

import pytest

from django_prodkit.tracing.otel.checks import check_otel
from django_prodkit.tracing.otel.config import DEFAULT_PROPAGATORS, parse_propagators, parse_sampler

TRACING = "django_prodkit.middleware.TracingMiddleware"


def _ids(settings: Any) -> list[str]:
    return sorted(message.id for message in check_otel() if message.id)


def test_off_and_on_with_defaults_pass(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    monkeypatch.delenv("OTEL_PROPAGATORS", raising=False)
    settings.PRODKIT = {}
    assert _ids(settings) == []
    settings.PRODKIT = {"OTEL": {"ENABLED": True}, "PROPAGATE_OUTBOUND": ["requests", "httpx", "urllib3"]}
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, TRACING]
    assert _ids(settings) == []


def test_every_problem_is_reported(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "sometimes")
    monkeypatch.setenv("OTEL_PROPAGATORS", "tracecontext,b3")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    settings.PRODKIT = {
        "OTEL": {"ENABLED": True, "ENDPOINT": "collector:4318", "AWS_SIGV4": True},
        "XRAY": {"ENABLED": True},
        "PROPAGATE_OUTBOUND": ["requests", "aiohttp"],
    }
    assert _ids(settings) == [
        "prodkit.E061",
        "prodkit.E062",
        "prodkit.E062",
        "prodkit.E063",
        "prodkit.E064",
        "prodkit.W060",
        "prodkit.W061",
    ]


def test_environment_parsing() -> None:
    assert parse_sampler({}) == ("parentbased_always_on", 1.0)
    assert parse_sampler({"OTEL_TRACES_SAMPLER": "TraceIdRatio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}) == (
        "traceidratio",
        0.25,
    )
    for bad in ("2", "-0.1", "half"):
        with pytest.raises(ValueError, match="OTEL_TRACES_SAMPLER_ARG"):
            parse_sampler({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": bad})
    assert parse_propagators({}) == DEFAULT_PROPAGATORS
    assert parse_propagators({"OTEL_PROPAGATORS": "xray, baggage"}) == ("xray",)
    assert parse_propagators({"OTEL_PROPAGATORS": "none"}) == ()


def test_enable_otel_is_parsed_strictly(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from django_prodkit.conf import get_config, reset_config

    monkeypatch.setenv("ENABLE_OTEL", "On")
    reset_config()
    assert get_config()["OTEL"]["ENABLED"] is True
    monkeypatch.setenv("ENABLE_OTEL", "maybe")
    reset_config()
    with pytest.raises(ImproperlyConfigured, match="ENABLE_OTEL"):
        get_config()
    monkeypatch.delenv("ENABLE_OTEL")
    reset_config()
