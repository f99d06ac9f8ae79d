"""The metrics endpoint's scrapes stay out of the access log; secret settings never show their values."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from django_prodkit.conf import get_config
from django_prodkit.conf.checks import check_settings

TOKEN = "scrape-token-0123456789"
REQUEST_ID = "django_prodkit.middleware.RequestIDMiddleware"
ACCESS_LOG = "django_prodkit.middleware.AccessLogMiddleware"


def access_paths(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.path for r in caplog.records if r.name == "django_prodkit.access"]  # type: ignore[attr-defined]


def test_scrapes_are_not_access_logged_by_default_and_can_be(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    settings.MIDDLEWARE = [REQUEST_ID, ACCESS_LOG]
    settings.PRODKIT = {"METRICS_TOKENS": [TOKEN]}
    caplog.set_level(logging.INFO, logger="django_prodkit.access")
    headers = {"authorization": f"Bearer {TOKEN}"}
    assert Client(headers=headers).get("/api/v1/metrics/").status_code == 200
    assert Client().get("/api/v1/hello/").status_code == 200
    assert access_paths(caplog) == ["/api/v1/hello/"]
    caplog.clear()
    settings.PRODKIT = {"METRICS_TOKENS": [TOKEN], "ACCESS_LOG_EXCLUDE_VIEWS": ["prodkit:healthcheck"]}
    assert Client(headers=headers).get("/api/v1/metrics/").status_code == 200
    assert access_paths(caplog) == ["/api/v1/metrics/"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("METRICS_TOKENS", "tok-abcdefgh-SECRET"),
        ("METRICS_TOKENS", ["ok", 12345678901234]),
        ("HEALTH_CHECK_REDIS_URLS", "redis://:tok-abcdefgh-SECRET@cache:6379/0"),
        ("HEALTH_CHECK_BROKER_URL", ["amqp://user:tok-abcdefgh-SECRET@mq//"]),
    ],
)
def test_a_secret_of_the_wrong_type_is_reported_without_its_value(settings: Any, key: str, value: Any) -> None:
    settings.PRODKIT = {key: value}
    [message] = check_settings()
    assert message.id == "prodkit.E002"
    assert f"PRODKIT[{key}]" in message.msg
    assert "value not shown" in message.msg
    for secret in ("SECRET", "12345678901234"):
        assert secret not in message.msg
    with pytest.raises(ImproperlyConfigured) as raised:
        get_config()
    assert "SECRET" not in str(raised.value)


def test_other_settings_of_the_wrong_type_still_show_their_value(settings: Any) -> None:
    settings.PRODKIT = {"SERVICE_NAME": 42}
    [message] = check_settings()
    assert "got int 42" in message.msg
