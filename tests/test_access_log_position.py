"""AccessLogMiddleware right after RequestIDMiddleware logs what the middleware below it answered itself."""

from __future__ import annotations

import io
import json
import logging
import logging.config
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from django.test import AsyncClient, Client
from django.utils.log import DEFAULT_LOGGING

from django_prodkit.logging import configure_logging
from django_prodkit.logs.checks import check_access_log_position

REQUEST_ID = "django_prodkit.middleware.RequestIDMiddleware"
ACCESS_LOG = "django_prodkit.middleware.AccessLogMiddleware"
DJANGO = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.http.ConditionalGetMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
RECOMMENDED = [REQUEST_ID, ACCESS_LOG, *DJANGO]
#: Where 1.0 told users to put it; kept here to show what it got wrong.
LAST = [REQUEST_ID, *DJANGO, ACCESS_LOG]


class AccessLines:
    """The access-log events written through ``configure_logging``'s handler."""

    def __init__(self) -> None:
        logging.config.dictConfig(configure_logging(fmt="json", level="INFO"))
        (handler,) = logging.getLogger().handlers
        assert isinstance(handler, logging.StreamHandler)
        self.buffer = io.StringIO()
        handler.setStream(self.buffer)

    def take(self) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.buffer.getvalue().splitlines() if line.strip()]
        self.buffer.seek(0)
        self.buffer.truncate()
        return [line for line in lines if line["logger"] == "django_prodkit.access"]


@pytest.fixture
def access() -> Iterator[AccessLines]:
    yield AccessLines()
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    logging.config.dictConfig(DEFAULT_LOGGING)
    structlog.reset_defaults()


def statuses(access: AccessLines) -> list[int]:
    return [line["status"] for line in access.take()]


@pytest.mark.parametrize(("middleware", "logged"), [(RECOMMENDED, [301]), (LAST, [404])], ids=["recommended", "last"])
def test_append_slash_redirect_is_logged_as_the_301_sent(
    settings: Any, access: AccessLines, middleware: list[str], logged: list[int]
) -> None:
    settings.MIDDLEWARE = middleware
    response = Client().get("/api/v1/hello")
    assert response.status_code == 301
    assert statuses(access) == logged


@pytest.mark.parametrize(("middleware", "logged"), [(RECOMMENDED, [304]), (LAST, [200])], ids=["recommended", "last"])
def test_not_modified_is_logged_as_the_304_sent(
    settings: Any, access: AccessLines, middleware: list[str], logged: list[int]
) -> None:
    settings.MIDDLEWARE = middleware
    client = Client()
    etag = client.get("/api/v1/exposed/")["ETag"]
    access.take()
    response = client.get("/api/v1/exposed/", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert statuses(access) == logged


@pytest.mark.parametrize(("middleware", "logged"), [(RECOMMENDED, [400]), (LAST, [])], ids=["recommended", "last"])
def test_bad_host_is_logged_as_the_400_sent(
    settings: Any, access: AccessLines, middleware: list[str], logged: list[int]
) -> None:
    settings.MIDDLEWARE = middleware
    response = Client().get("/api/v1/hello/", HTTP_HOST="attacker.example")
    assert response.status_code == 400
    lines = access.take()
    assert [line["status"] for line in lines] == logged
    assert all(line["request_id"] == response["X-Request-ID"] for line in lines)


@pytest.mark.parametrize(("middleware", "logged"), [(RECOMMENDED, [301]), (LAST, [])], ids=["recommended", "last"])
def test_ssl_redirect_is_logged(settings: Any, access: AccessLines, middleware: list[str], logged: list[int]) -> None:
    settings.MIDDLEWARE = middleware
    settings.SECURE_SSL_REDIRECT = True
    response = Client().get("/api/v1/hello/")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")
    assert statuses(access) == logged


def test_async_stack_logs_the_redirect_too(settings: Any, access: AccessLines) -> None:
    settings.MIDDLEWARE = RECOMMENDED
    from asgiref.sync import async_to_sync

    response = async_to_sync(AsyncClient().get)("/api/v1/async")
    assert response.status_code == 301
    assert statuses(access) == [301]


@pytest.mark.django_db
def test_the_user_is_still_logged_from_above_authentication(settings: Any, access: AccessLines) -> None:
    from django.contrib.auth.models import User

    settings.MIDDLEWARE = RECOMMENDED
    user = User.objects.create_user("dora", password="pw-dora-12345")
    client = Client()
    client.force_login(user)
    access.take()
    client.get("/api/v1/whoami/")
    (line,) = access.take()
    assert line["user_id"] == user.pk


def test_check_recommends_the_place_right_after_request_id(settings: Any) -> None:
    settings.MIDDLEWARE = RECOMMENDED
    assert check_access_log_position() == []
    settings.MIDDLEWARE = [REQUEST_ID, "django_prodkit.middleware.HealthCheckMiddleware", ACCESS_LOG, *DJANGO]
    assert check_access_log_position() == []
    settings.MIDDLEWARE = LAST
    (warning,) = check_access_log_position()
    assert warning.id == "prodkit.W051"
    assert "django.middleware.security.SecurityMiddleware" in warning.msg
    settings.MIDDLEWARE = DJANGO
    assert check_access_log_position() == []


def test_health_probes_answered_below_it_stay_out_of_the_access_log(settings: Any, access: AccessLines) -> None:
    settings.MIDDLEWARE = [REQUEST_ID, ACCESS_LOG, "django_prodkit.middleware.HealthCheckMiddleware", *DJANGO]
    settings.PRODKIT = {"HEALTH_CHECK_DATABASES": [], "HEALTH_CHECK_CACHES": []}
    client = Client()
    assert client.get("/api/v1/healthcheck/", HTTP_HOST="10.0.3.17:8000").status_code == 200
    assert client.get("/api/v1/healthcheck/ready/", HTTP_HOST="10.0.3.17:8000").status_code == 200
    assert client.get("/api/v1/hello/").status_code == 200
    assert [line["route"] for line in access.take()] == ["/api/v1/hello/"]
