"""The deploy checks, each against a bad and a good configuration, and ``check --deploy`` with both helpers."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_prodkit.security.checks import check_csrf_trusted_origins, check_samesite_none, check_session_lifetime
from django_prodkit.settings import security_hardening, session_hardening

#: A key with the length and variety Django's security.W009 asks for (tests only, never deployed).
PRODUCTION_LIKE_SECRET_KEY = "q7$Xv!2mZ@r9Lk#Tn4Wp8&Jd6Hs1Fb3Gc5Ye0Ua^Ri*Oe(Mt)Nl_Kx+Qz=Vw-Py"

PRODUCTION_MIDDLEWARE = [
    "django_prodkit.middleware.HealthCheckMiddleware",
    "django_prodkit.middleware.RequestIDMiddleware",
    "django_prodkit.middleware.AccessLogMiddleware",
    "django_prodkit.middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]


@pytest.fixture(autouse=True)
def _no_age_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SESSION_COOKIE_AGE", raising=False)


def ids(messages: list[Any]) -> list[str]:
    return [message.id for message in messages]


def test_session_age_over_the_limit(settings: Any) -> None:
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = True
    settings.SESSION_COOKIE_AGE = 1209600  # Django's default, two weeks
    (message,) = check_session_lifetime()
    assert message.id == "prodkit.W010"
    assert "1209600" in message.msg
    assert message.hint
    settings.SESSION_COOKIE_AGE = 43200
    assert check_session_lifetime() == []
    settings.PRODKIT = {"SESSION_MAX_AGE_WARNING": 3600}
    assert ids(check_session_lifetime()) == ["prodkit.W010"]


def test_session_not_expiring_at_browser_close(settings: Any) -> None:
    settings.SESSION_COOKIE_AGE = 3600
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = False
    assert ids(check_session_lifetime()) == ["prodkit.W011"]
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = True
    assert check_session_lifetime() == []


def test_session_checks_are_silent_without_sessions(settings: Any) -> None:
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = False
    settings.INSTALLED_APPS = ["django.contrib.contenttypes", "django_prodkit"]
    settings.MIDDLEWARE = []
    assert check_session_lifetime() == []


@pytest.mark.parametrize("none", ["None", "none", "NONE"])
def test_samesite_none_without_secure(settings: Any, none: str) -> None:
    settings.SESSION_COOKIE_SAMESITE = none
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SAMESITE = none
    settings.CSRF_COOKIE_SECURE = False
    assert ids(check_samesite_none()) == ["prodkit.W012", "prodkit.W013"]
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    assert check_samesite_none() == []
    settings.SESSION_COOKIE_SAMESITE = "Lax"
    settings.SESSION_COOKIE_SECURE = False
    assert check_samesite_none() == []


def test_csrf_trusted_origins(settings: Any) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["app.example.com", "http://api.example.com", "https://ok.example.com"]
    messages = check_csrf_trusted_origins()
    # A missing scheme is Django's own 4_0.E001; reporting it twice only adds noise.
    assert ids(messages) == ["prodkit.W015"]
    assert "'http://api.example.com'" in messages[0].msg
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com", "https://*.example.com", "http://localhost:3000"]
    assert check_csrf_trusted_origins() == []


def _check_deploy() -> str:
    out = StringIO()
    call_command("check", deploy=True, fail_level="WARNING", stdout=out, stderr=StringIO())
    return out.getvalue()


def test_default_settings_fail_check_deploy_with_our_warnings() -> None:
    with pytest.raises(SystemCheckError) as raised:
        _check_deploy()
    assert "prodkit.W010" in str(raised.value)
    assert "prodkit.W011" in str(raised.value)


def test_both_helpers_pass_check_deploy() -> None:
    hardened = {**session_hardening(), **security_hardening(behind_proxy=True)}
    production = {
        "SECRET_KEY": PRODUCTION_LIKE_SECRET_KEY,
        "DEBUG": False,
        "ALLOWED_HOSTS": ["api.example.com"],
        "CSRF_TRUSTED_ORIGINS": ["https://app.example.com"],
        "MIDDLEWARE": PRODUCTION_MIDDLEWARE,
        "PRODKIT": {"METRICS_TOKENS": ["3c9f0e4b8a7d4f2e9b1c6a5d0e8f7a2b"]},
    }
    # HSTS includeSubDomains and preload are opt-in, so Django asks for them until they are silenced.
    with override_settings(**hardened, **production), pytest.raises(SystemCheckError, match=r"security\.W021"):
        _check_deploy()
    silenced = ["security.W005", "security.W021"]
    with override_settings(**hardened, **production, SILENCED_SYSTEM_CHECKS=silenced):
        assert "System check identified no issues" in _check_deploy()
    preloaded = security_hardening(behind_proxy=True, hsts_include_subdomains=True, hsts_preload=True)
    with override_settings(**{**hardened, **preloaded}, **production):
        assert "System check identified no issues" in _check_deploy()
