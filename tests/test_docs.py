"""The docs cannot drift from the code: every setting, environment variable and check id is documented."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from django_prodkit.checks import CHECK_IDS
from django_prodkit.conf import DEFAULTS, ENV_OVERRIDES, type_errors

DOCS = Path(__file__).resolve().parent.parent / "docs"
PACKAGE = DOCS.parent / "django_prodkit"


def dotted_keys(mapping: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield from dotted_keys(value, f"{prefix}{key}.")
        else:
            yield prefix + key


def dotted_items(mapping: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield from dotted_items(value, f"{prefix}{key}.")
        else:
            yield prefix + key, value


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


def table_rows(text: str, header_start: str) -> tuple[list[str], list[list[str]]]:
    """The header and body rows of the Markdown table whose header row starts with ``header_start``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    header = [cell.strip() for cell in lines[start].strip().strip("|").split(" | ")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().removeprefix("|").removesuffix("|").split(" | ")])
    return header, rows


def literal(cell: str) -> Any:
    assert cell.startswith("`"), cell
    assert cell.endswith("`"), cell
    return ast.literal_eval(cell.strip("`"))


def nested(dotted: str, value: Any) -> dict[str, Any]:
    *parents, last = dotted.split(".")
    result: dict[str, Any] = {last: value}
    for parent in reversed(parents):
        result = {parent: result}
    return result


def test_every_setting_row_has_type_default_example_and_meaning() -> None:
    header, rows = table_rows((DOCS / "settings.md").read_text(), "| key |")
    assert header == ["key", "type", "default", "example", "meaning"]
    defaults = dict(dotted_items(DEFAULTS))
    assert {row[0].strip("`") for row in rows} == set(defaults)
    for row in rows:
        assert len(row) == len(header), row
        assert all(row), row
        key = row[0].strip("`")
        assert literal(row[2]) == defaults[key], f"{key}: the documented default is not the code's"
        example = literal(row[3])
        assert example != defaults[key], f"{key}: the example is the default"
        assert type_errors(nested(key, example)) == [], f"{key}: the example is not a valid value"


def test_every_environment_variable_row_has_every_column() -> None:
    header, rows = table_rows((DOCS / "settings.md").read_text(), "| variable |")
    assert header == ["variable", "type", "default", "example", "meaning"]
    for row in rows:
        assert len(row) == len(header), row
        assert all(row), row
        variable = row[0].strip("`")
        assert row[3].startswith(f"`{variable}="), f"{variable}: the example must set the variable"


def environment_variables_read_by_the_package() -> set[str]:
    """Names read with ``os.environ``/``os.getenv``, or held in constants named ``*_ENV``/``*ENVIRONMENT``."""
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id.endswith(("_ENV", "ENVIRONMENT")) for t in node.targets
            ):
                found.update(
                    c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)
                )
            elif isinstance(node, ast.Call) and ast.unparse(node.func) in {"os.environ.get", "os.getenv"}:
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.add(first.value)
            elif (
                isinstance(node, ast.Subscript)
                and ast.unparse(node.value) == "os.environ"
                and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, str)
            ):
                found.add(node.slice.value)
    return found | {override.variable for override in ENV_OVERRIDES}


def test_every_environment_variable_the_package_reads_is_documented() -> None:
    _, rows = table_rows((DOCS / "settings.md").read_text(), "| variable |")
    documented = {row[0].strip("`") for row in rows}
    read = environment_variables_read_by_the_package()
    assert {"SESSION_COOKIE_AGE", "PROMETHEUS_MULTIPROC_DIR", "AWS_XRAY_DAEMON_ADDRESS"} <= read
    assert sorted(read - documented) == []


def test_every_check_row_says_what_to_do() -> None:
    header, rows = table_rows((DOCS / "checks.md").read_text(), "| id |")
    assert header == ["id", "level", "meaning", "what to do"]
    assert sorted(row[0].strip("`") for row in rows) == sorted(CHECK_IDS)
    for row in rows:
        assert len(row) == len(header), row
        assert all(row), row
