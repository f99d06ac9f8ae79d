from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

import django_prodkit
from django_prodkit.checks import CHECK_ID_TABLES, CHECK_IDS
from django_prodkit.conf.checks import check_settings
from django_prodkit.stack.checks import check_middleware_order

PACKAGE = Path(django_prodkit.__file__).parent


def ids(messages: list[object]) -> list[str]:
    return [m.id for m in messages]  # type: ignore[attr-defined]


def test_clean_configuration_has_no_messages(settings: object) -> None:
    settings.PRODKIT = {"SERVICE_NAME": "blog"}  # type: ignore[attr-defined]
    assert check_settings() == []
    assert check_middleware_order() == []


def test_unknown_key_is_an_error_with_the_closest_key(settings: object) -> None:
    settings.PRODKIT = {"REQUEST_ID_HEADR": "X-Id"}  # type: ignore[attr-defined]
    (message,) = check_settings()
    assert message.id == "prodkit.E001"
    assert "'REQUEST_ID_HEADR'" in message.msg
    assert "REQUEST_ID_HEADER" in (message.hint or "")


def test_wrong_type_is_an_error_with_the_key(settings: object) -> None:
    settings.PRODKIT = {"ACCESS_LOG_EXCLUDE_PATHS": "/health/"}  # type: ignore[attr-defined]
    (message,) = check_settings()
    assert message.id == "prodkit.E002"
    assert "ACCESS_LOG_EXCLUDE_PATHS" in message.msg


def test_bad_environment_variable_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_CLOUDWATCH_METRICS", "maybe")
    (message,) = check_settings()
    assert message.id == "prodkit.E003"
    assert "ENABLE_CLOUDWATCH_METRICS" in message.msg


def test_prodkit_not_a_dict_is_an_error(settings: object) -> None:
    settings.PRODKIT = "oops"  # type: ignore[attr-defined]
    assert ids(check_settings()) == ["prodkit.E003"]


def test_invalid_header_name_is_an_error(settings: object) -> None:
    settings.PRODKIT = {"REQUEST_ID_HEADER": "X Request ID"}  # type: ignore[attr-defined]
    assert ids(check_settings()) == ["prodkit.E004"]


def test_access_log_above_request_id_is_a_warning(settings: object) -> None:
    settings.MIDDLEWARE = [  # type: ignore[attr-defined]
        "django_prodkit.middleware.AccessLogMiddleware",
        "django_prodkit.middleware.RequestIDMiddleware",
    ]
    assert ids(check_middleware_order()) == ["prodkit.W001"]


def test_checks_run_through_manage_py_check(settings: object) -> None:
    settings.PRODKIT = {"SERVCE_NAME": "x"}  # type: ignore[attr-defined]
    with pytest.raises(SystemCheckError, match=r"prodkit\.E001"):
        call_command("check", stdout=StringIO(), stderr=StringIO())


def test_check_ids_are_unique_and_every_id_in_the_code_is_listed() -> None:
    pattern = re.compile(r"prodkit\.[EW]\d{3}")
    used: set[str] = set()
    for source in PACKAGE.rglob("*.py"):
        used.update(pattern.findall(source.read_text()))
    assert used == set(CHECK_IDS)
    # Each concern keeps its own table; an id defined in two of them would be silently merged into one.
    assert sum(len(table) for table in CHECK_ID_TABLES) == len(CHECK_IDS)
    assert all(pattern.fullmatch(check_id) for check_id in CHECK_IDS)
