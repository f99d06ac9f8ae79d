"""``prodkit.E160``/``E161``: each of our middleware listed once, subclasses and the X-Ray alias included."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_prodkit.stack.checks import check_middleware_listed_once

QUICKSTART = [
    "django_prodkit.middleware.RequestIDMiddleware",
    "django_prodkit.middleware.AccessLogMiddleware",
    "django_prodkit.middleware.HealthCheckMiddleware",
    "django_prodkit.middleware.MetricsMiddleware",
]
DJANGO = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
TRACING = "django_prodkit.middleware.TracingMiddleware"
XRAY = "django_prodkit.middleware.XRayMiddleware"


def messages(middleware: list[str]) -> list[tuple[str, str]]:
    with override_settings(MIDDLEWARE=middleware):
        return [(m.id or "", m.msg) for m in check_middleware_listed_once()]


def test_the_quickstart_with_tracing_is_clean() -> None:
    assert messages([*QUICKSTART, TRACING, *DJANGO]) == []
    assert messages([*QUICKSTART, XRAY, *DJANGO]) == []  # the old name alone is fine


def test_a_page_pasted_in_full_after_the_quickstart_is_an_error_per_middleware() -> None:
    # What pasting an old full MIDDLEWARE block after the quickstart's gave: every one of ours twice.
    found = messages([*QUICKSTART, TRACING, *QUICKSTART, *DJANGO])
    assert [check_id for check_id, _ in found] == ["prodkit.E160"] * 4
    access = next(msg for _, msg in found if "AccessLogMiddleware 2 times" in msg)
    assert "two access lines" in access


def test_a_subclass_beside_its_base_counts_as_the_same_middleware() -> None:
    found = messages(["tests.custom_middleware.MyRequestID", *QUICKSTART, "tests.custom_middleware.MyMetrics", *DJANGO])
    assert [check_id for check_id, _ in found] == ["prodkit.E160", "prodkit.E160"]
    assert "tests.custom_middleware.MyRequestID" in found[0][1]
    assert "tests.custom_middleware.MyMetrics" in found[1][1]
    # Different middleware that share a base class of ours are not duplicates of each other.
    assert messages(["tests.custom_middleware.MyRequestID", "tests.custom_middleware.MyMetrics"]) == []


def test_xray_middleware_beside_tracing_middleware_is_its_own_error() -> None:
    ((check_id, msg),) = messages([*QUICKSTART, XRAY, TRACING, *DJANGO])
    assert check_id == "prodkit.E161"
    assert "old name" in msg
    assert messages([*QUICKSTART, XRAY, XRAY, *DJANGO])[0][0] == "prodkit.E160"


def test_manage_py_check_fails_on_a_duplicate(settings: object) -> None:
    settings.MIDDLEWARE = [*QUICKSTART, "django_prodkit.middleware.AccessLogMiddleware"]  # type: ignore[attr-defined]
    with pytest.raises(SystemCheckError, match=r"prodkit\.E160"):
        call_command("check", stdout=StringIO(), stderr=StringIO())
