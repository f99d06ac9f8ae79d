"""The docs cannot drift from the code: every setting, environment variable and check id is documented."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from django_prodkit.checks import CHECK_IDS
from django_prodkit.conf import DEFAULTS, ENV_OVERRIDES

DOCS = Path(__file__).resolve().parent.parent / "docs"


def dotted_keys(mapping: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield from dotted_keys(value, f"{prefix}{key}.")
        else:
            yield prefix + key


def test_every_setting_is_in_the_settings_reference() -> None:
    text = (DOCS / "settings.md").read_text()
    missing = [key for key in dotted_keys(DEFAULTS) if f"| `{key}` |" not in text]
    assert missing == []


def test_every_environment_variable_is_in_the_settings_reference() -> None:
    text = (DOCS / "settings.md").read_text()
    missing = [o.variable for o in ENV_OVERRIDES if f"| `{o.variable}` |" not in text]
    assert missing == []


def test_every_check_id_is_in_the_checks_reference() -> None:
    text = (DOCS / "checks.md").read_text()
    missing = [check_id for check_id in CHECK_IDS if f"| `{check_id}` |" not in text]
    assert missing == []
