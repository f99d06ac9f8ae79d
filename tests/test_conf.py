from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_prodkit import conf
from django_prodkit.conf import DEFAULTS, freeze, get_config
from django_prodkit.conf.environment import parse_bool, parse_csv


def test_defaults_apply_when_prodkit_is_unset(settings: object) -> None:
    del settings.PRODKIT  # type: ignore[attr-defined]
    assert get_config() == freeze(DEFAULTS)


def test_config_is_read_only_all_the_way_down(settings: object) -> None:
    # One cached mapping is shared by every caller: a write would change the settings of the whole process.
    settings.PRODKIT = {"CLOUDWATCH": {"DIMENSIONS": {"Environment": "test"}}, "METRICS_TOKENS": ["t"]}  # type: ignore[attr-defined]
    config = get_config()
    with pytest.raises(TypeError):
        config["SERVICE_NAME"] = "changed"  # type: ignore[index]
    with pytest.raises(TypeError):
        config["XRAY"]["ENABLED"] = True
    with pytest.raises(TypeError):
        config["CLOUDWATCH"]["DIMENSIONS"]["Environment"] = "production"
    with pytest.raises(AttributeError):
        config["METRICS_TOKENS"].append("another")
    assert get_config()["SERVICE_NAME"] == "django"
    assert settings.PRODKIT["METRICS_TOKENS"] == ["t"]  # type: ignore[attr-defined]


def test_user_values_merge_over_defaults_including_nested(settings: object) -> None:
    settings.PRODKIT = {"SERVICE_NAME": "blog", "XRAY": {"ENABLED": True}}  # type: ignore[attr-defined]
    config = get_config()
    assert config["SERVICE_NAME"] == "blog"
    assert config["XRAY"]["ENABLED"] is True
    assert config["REQUEST_ID_HEADER"] == DEFAULTS["REQUEST_ID_HEADER"]
    assert DEFAULTS["XRAY"]["ENABLED"] is False


def test_config_is_cached_and_reset_by_override_settings() -> None:
    assert get_config() is get_config()
    with override_settings(PRODKIT={"SERVICE_NAME": "inner"}):
        assert get_config()["SERVICE_NAME"] == "inner"
    assert get_config()["SERVICE_NAME"] == "django"


def test_wrong_type_raises_with_the_key_name(settings: object) -> None:
    settings.PRODKIT = {"REQUEST_ID_TRUST_INCOMING": "yes"}  # type: ignore[attr-defined]
    with pytest.raises(ImproperlyConfigured, match=r"PRODKIT\[REQUEST_ID_TRUST_INCOMING\] must be bool"):
        get_config()


def test_nested_wrong_type_names_the_dotted_key(settings: object) -> None:
    settings.PRODKIT = {"XRAY": {"ENABLED": 1}}  # type: ignore[attr-defined]
    with pytest.raises(ImproperlyConfigured, match=r"PRODKIT\[XRAY\.ENABLED\]"):
        get_config()


def test_prodkit_must_be_a_dict(settings: object) -> None:
    settings.PRODKIT = ["not", "a", "dict"]  # type: ignore[attr-defined]
    with pytest.raises(ImproperlyConfigured, match="PRODKIT must be a dict"):
        get_config()


def test_environment_overrides_settings(monkeypatch: pytest.MonkeyPatch, settings: object) -> None:
    settings.PRODKIT = {"XRAY": {"ENABLED": False}}  # type: ignore[attr-defined]
    monkeypatch.setenv("ENABLE_XRAY", "true")
    monkeypatch.setenv("PRODKIT_METRICS_TOKENS", " a , b,,c ")
    conf.reset_config()
    config = get_config()
    assert config["XRAY"]["ENABLED"] is True
    assert config["METRICS_TOKENS"] == ("a", "b", "c")


def test_environment_overrides_never_change_the_defaults(monkeypatch: pytest.MonkeyPatch, settings: object) -> None:
    settings.PRODKIT = {}  # type: ignore[attr-defined]
    monkeypatch.setenv("ENABLE_XRAY", "true")
    monkeypatch.setenv("ENABLE_CLOUDWATCH_METRICS", "true")
    conf.reset_config()
    assert get_config()["XRAY"]["ENABLED"] is True
    assert DEFAULTS["XRAY"]["ENABLED"] is False
    assert DEFAULTS["CLOUDWATCH"]["ENABLED"] is False
    monkeypatch.delenv("ENABLE_XRAY")
    monkeypatch.delenv("ENABLE_CLOUDWATCH_METRICS")
    conf.reset_config()
    assert get_config()["XRAY"]["ENABLED"] is False


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled", "tru"])
def test_bad_boolean_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("ENABLE_XRAY", raw)
    with pytest.raises(ImproperlyConfigured, match=rf"ENABLE_XRAY={raw!r} is not a boolean"):
        get_config()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("TRUE", True), (" yes ", True), ("on", True), ("0", False), ("False", False), ("", False)],
)
def test_parse_bool_accepts_the_documented_spellings(raw: str, expected: bool) -> None:
    assert parse_bool("X", raw) is expected


def test_parse_csv_drops_empty_items() -> None:
    assert parse_csv("X", "") == []
    assert parse_csv("X", "one") == ["one"]


def test_unknown_keys_suggest_the_closest_valid_key() -> None:
    found = conf.unknown_keys({"SERVICE_NAM": "x", "TOTALLY_UNRELATED": 1, "XRAY": {"ENABLD": True}})
    assert ("SERVICE_NAM", "SERVICE_NAME") in found
    assert ("TOTALLY_UNRELATED", None) in found
    assert ("XRAY.ENABLD", "XRAY.ENABLED") in found
