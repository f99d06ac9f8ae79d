"""session_hardening() and security_hardening(): their values, overrides, the env var and bad input."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_prodkit.settings import FORWARDED_PROTO, HSTS_RAMP_UP, security_hardening, session_hardening


@pytest.fixture(autouse=True)
def _no_age_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SESSION_COOKIE_AGE", raising=False)


def test_session_defaults() -> None:
    assert session_hardening() == {
        "SESSION_COOKIE_AGE": 3600,
        "SESSION_EXPIRE_AT_BROWSER_CLOSE": True,
        "SESSION_SAVE_EVERY_REQUEST": True,
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "CSRF_COOKIE_SECURE": True,
        "CSRF_COOKIE_HTTPONLY": False,
        "CSRF_COOKIE_SAMESITE": "Lax",
    }


def test_session_overrides_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert session_hardening(SESSION_COOKIE_AGE=1800)["SESSION_COOKIE_AGE"] == 1800
    assert session_hardening(SESSION_COOKIE_SAMESITE="Strict")["SESSION_COOKIE_SAMESITE"] == "Strict"
    monkeypatch.setenv("SESSION_COOKIE_AGE", " 900 ")
    assert session_hardening()["SESSION_COOKIE_AGE"] == 900
    assert session_hardening(SESSION_COOKIE_AGE=1800)["SESSION_COOKIE_AGE"] == 900  # the operator's knob wins


def test_each_call_returns_a_new_dict() -> None:
    first = session_hardening()
    first["SESSION_COOKIE_AGE"] = 1
    assert session_hardening()["SESSION_COOKIE_AGE"] == 3600


@pytest.mark.parametrize("raw", ["abc", "-5", "0", "1.5", "", "3600s", "٣٦٠٠"])
def test_bad_session_cookie_age_env_names_the_variable(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("SESSION_COOKIE_AGE", raw)
    with pytest.raises(ImproperlyConfigured, match=r"SESSION_COOKIE_AGE="):
        session_hardening()


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"SESSION_COOKIE_AGE": 0}, "SESSION_COOKIE_AGE"),
        ({"SESSION_COOKIE_AGE": -5}, "SESSION_COOKIE_AGE"),
        ({"SESSION_COOKIE_AGE": "3600"}, "SESSION_COOKIE_AGE"),
        ({"SESSION_COOKIE_AGE": True}, "SESSION_COOKIE_AGE"),
        ({"SESSION_COOKIE_SECURE": "yes"}, "SESSION_COOKIE_SECURE"),
        ({"SESSION_COOKIE_SAMESITE": "lax"}, "SESSION_COOKIE_SAMESITE"),
        ({"SESSION_COOKIE_AGEE": 60}, "SESSION_COOKIE_AGEE"),
        ({"SECURE_SSL_REDIRECT": True}, "SECURE_SSL_REDIRECT"),
        ({"SESSION_COOKIE_SAMESITE": "None", "SESSION_COOKIE_SECURE": False}, "SESSION_COOKIE_SECURE"),
        ({"CSRF_COOKIE_SAMESITE": "None", "CSRF_COOKIE_SECURE": False}, "CSRF_COOKIE_SECURE"),
    ],
)
def test_bad_session_overrides_name_the_key(overrides: dict[str, object], named: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=named):
        session_hardening(**overrides)


def test_security_defaults_without_a_proxy() -> None:
    values = security_hardening()
    assert values == {
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": HSTS_RAMP_UP[0],
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SECURE_REFERRER_POLICY": "same-origin",
        "SECURE_CROSS_ORIGIN_OPENER_POLICY": "same-origin",
        "X_FRAME_OPTIONS": "DENY",
    }
    assert "SECURE_PROXY_SSL_HEADER" not in values


def test_security_behind_a_proxy() -> None:
    assert security_hardening(behind_proxy=True)["SECURE_PROXY_SSL_HEADER"] == FORWARDED_PROTO
    custom = ("HTTP_CLOUDFRONT_FORWARDED_PROTO", "https")
    assert security_hardening(behind_proxy=True, SECURE_PROXY_SSL_HEADER=custom)["SECURE_PROXY_SSL_HEADER"] == custom
    assert security_hardening(SECURE_HSTS_SECONDS=HSTS_RAMP_UP[-1])["SECURE_HSTS_SECONDS"] == 31536000


def test_hsts_subdomains_and_preload_are_opt_in() -> None:
    # Preload is close to irreversible for a whole domain: it must be asked for, with subdomains.
    subdomains = security_hardening(hsts_include_subdomains=True)
    assert (subdomains["SECURE_HSTS_INCLUDE_SUBDOMAINS"], subdomains["SECURE_HSTS_PRELOAD"]) == (True, False)
    preload = security_hardening(hsts_include_subdomains=True, hsts_preload=True)
    assert (preload["SECURE_HSTS_INCLUDE_SUBDOMAINS"], preload["SECURE_HSTS_PRELOAD"]) == (True, True)
    with pytest.raises(ImproperlyConfigured, match="hsts_include_subdomains"):
        security_hardening(hsts_preload=True)
    with pytest.raises(ImproperlyConfigured, match="hsts_preload"):
        security_hardening(hsts_include_subdomains=True, hsts_preload="yes")


def test_hsts_ramp_up_increases_to_a_year() -> None:
    assert list(HSTS_RAMP_UP) == sorted(HSTS_RAMP_UP)
    assert HSTS_RAMP_UP[-1] == 365 * 24 * 3600


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"SECURE_PROXY_SSL_HEADER": FORWARDED_PROTO}, "behind_proxy"),
        ({"behind_proxy": "yes"}, "behind_proxy"),
        ({"behind_proxy": True, "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, "SECURE_PROXY_SSL_HEADER"),
        ({"behind_proxy": True, "SECURE_PROXY_SSL_HEADER": ("X_FORWARDED_PROTO", "https")}, "SECURE_PROXY_SSL_HEADER"),
        ({"SECURE_HSTS_SECONDS": -1}, "SECURE_HSTS_SECONDS"),
        ({"SECURE_HSTS_SECONDS": 1.5}, "SECURE_HSTS_SECONDS"),
        ({"X_FRAME_OPTIONS": "ALLOW"}, "X_FRAME_OPTIONS"),
        ({"SECURE_REFERRER_POLICY": "everyone"}, "SECURE_REFERRER_POLICY"),
        ({"SECURE_CROSS_ORIGIN_OPENER_POLICY": "none"}, "SECURE_CROSS_ORIGIN_OPENER_POLICY"),
        ({"SESSION_COOKIE_AGE": 60}, "SESSION_COOKIE_AGE"),
    ],
)
def test_bad_security_input_names_it(kwargs: dict[str, object], named: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=named):
        security_hardening(**kwargs)  # type: ignore[arg-type]
