"""``--scenario FILE``: a TOML file with the request mix, stages, thresholds and load (see docs/load-testing.md).

Every mistake is a :class:`ScenarioError` that names the file, the line and the key.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django_prodkit.loadtest.config import (
    DEFAULT_METHOD,
    ConfigError,
    RequestSpec,
    Stage,
    check_header_value,
    check_method,
    check_path,
)
from django_prodkit.loadtest.thresholds import OVERALL, Criterion, ThresholdError, parse_threshold

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

LOAD_KEYS = {"url": str, "users": int, "requests_per_user": int, "duration": float, "rate": float, "timeout": float}
TOP_KEYS = {*LOAD_KEYS, "requests", "stages", "thresholds", "warmup"}
REQUEST_KEYS = {"path", "method", "headers", "body", "weight", "expect_status", "name"}
STAGE_KEYS = {"duration", "target"}
ABORT_KEY = "abort_on_fail"
TOML_LINE_RE = re.compile(r"at line (\d+)")


class ScenarioError(ValueError):
    """The scenario file is wrong; the message names the line and the key."""


@dataclass(frozen=True)
class Scenario:
    """What a scenario file says; load keys it leaves out are None (the command line or the defaults apply)."""

    specs: tuple[RequestSpec, ...]
    stages: tuple[Stage, ...] = ()
    criteria: tuple[Criterion, ...] = ()
    abort_on_fail: bool = False
    load: dict[str, Any] = field(default_factory=dict)


class _Locator:
    """Finds the line of a key in the file's text, for error messages (tomllib keeps no positions)."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line(self, key: str, table: str | None = None, index: int = 0) -> int:
        start, seen = 0, -1
        if table is not None:
            header = re.compile(rf"\s*\[\[?\s*{re.escape(table)}\s*\]\]?")
            for number, line in enumerate(self.lines):
                if header.match(line):
                    seen += 1
                    if seen == index:
                        start = number
                        break
        pattern = re.compile(rf"\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for number in range(start, len(self.lines)):
            if pattern.match(self.lines[number]):
                return number + 1
        return start + 1

    def error(self, message: str, key: str, table: str | None = None, index: int = 0) -> ScenarioError:
        where = f"{table}[{index}].{key}" if table in ("requests", "stages") else (f"{table}.{key}" if table else key)
        return ScenarioError(f"{self.path}:{self.line(key, table, index)}: {where}: {message}")


def _typed(loc: _Locator, value: Any, kind: type, key: str, table: str | None = None, index: int = 0) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is float and isinstance(value, float) and not math.isfinite(value):
        raise loc.error(f"expected a finite number, got {value!r}", key, table, index)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise loc.error(f"expected {kind.__name__}, got {value!r}", key, table, index)
    return value


def _request(loc: _Locator, index: int, item: Any) -> RequestSpec:
    if not isinstance(item, dict):
        raise loc.error("expected a table", "requests")
    for key in item:
        if key not in REQUEST_KEYS:
            raise loc.error(f"unknown key (expected one of {', '.join(sorted(REQUEST_KEYS))})", key, "requests", index)
    if "path" not in item:
        raise loc.error("every request needs a path", "path", "requests", index)

    def get(key: str, kind: type, default: Any) -> Any:
        return _typed(loc, item[key], kind, key, "requests", index) if key in item else default

    path, method = get("path", str, ""), get("method", str, DEFAULT_METHOD).upper()
    headers = get("headers", dict, {})
    weight = get("weight", float, 1.0)
    statuses = get("expect_status", list, [])
    checks: tuple[tuple[str, Callable[[str, str], None], str], ...] = (
        ("path", check_path, path),
        ("method", check_method, method),
    )
    for key, check, value in checks:
        try:
            check(value, key)
        except ConfigError as exc:
            raise loc.error(str(exc), key, "requests", index) from None
    for name, value in headers.items():
        try:
            check_method(name, "header name")
            check_header_value(name, _typed(loc, value, str, "headers", "requests", index), "header")
        except ConfigError as exc:
            raise loc.error(str(exc), "headers", "requests", index) from None
    if not weight > 0:
        raise loc.error(f"must be positive, got {weight}", "weight", "requests", index)
    if any(not isinstance(s, int) or not 100 <= s <= 599 for s in statuses):
        raise loc.error("a list of status codes between 100 and 599", "expect_status", "requests", index)
    return RequestSpec(
        path=path,
        name=get("name", str, ""),
        method=method,
        headers=tuple(headers.items()),
        body=get("body", str, "").encode(),
        weight=weight,
        expect_status=frozenset(statuses),
    )


def _stage(loc: _Locator, index: int, item: Any) -> Stage:
    if not isinstance(item, dict):
        raise loc.error("expected a table", "stages")
    for key in STAGE_KEYS | set(item):
        if key not in STAGE_KEYS:
            raise loc.error("unknown key (expected duration and target)", key, "stages", index)
        if key not in item:
            raise loc.error("missing", key, "stages", index)
    duration = _typed(loc, item["duration"], float, "duration", "stages", index)
    target = _typed(loc, item["target"], float, "target", "stages", index)
    if not duration > 0:
        raise loc.error(f"must be positive, got {duration}", "duration", "stages", index)
    if target < 0:
        raise loc.error(f"cannot be negative, got {target}", "target", "stages", index)
    return Stage(duration, target)


def _thresholds(loc: _Locator, table: Any, names: set[str]) -> tuple[list[Criterion], bool]:
    if not isinstance(table, dict):
        raise loc.error("expected a table", "thresholds")
    criteria: list[Criterion] = []
    abort = False
    for scope, expressions in table.items():
        if scope == ABORT_KEY:
            abort = _typed(loc, expressions, bool, scope, "thresholds")
            continue
        if scope != OVERALL and scope not in names:
            raise loc.error(f"no request has this name (names: {', '.join(sorted(names))})", scope, "thresholds")
        items = [expressions] if isinstance(expressions, str) else expressions
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise loc.error('expected a list of expressions like "p95<300"', scope, "thresholds")
        for expression in items:
            try:
                criteria.append(parse_threshold(expression, scope))
            except ThresholdError as exc:
                raise loc.error(str(exc), scope, "thresholds") from None
    return criteria, abort


def load_scenario(path: Path) -> Scenario:
    """Read and check a scenario file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"--scenario {path}: {exc}") from None
    loc = _Locator(path, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = TOML_LINE_RE.search(str(exc))
        raise ScenarioError(f"{path}:{match.group(1) if match else '?'}: not valid TOML: {exc}") from None
    for key in data:
        if key not in TOP_KEYS:
            raise loc.error(f"unknown key (expected one of {', '.join(sorted(TOP_KEYS))})", key)
    items = data.get("requests")
    if not isinstance(items, list) or not items:
        raise ScenarioError(f"{path}:1: requests: give at least one [[requests]] table with a path")
    specs = tuple(_request(loc, index, item) for index, item in enumerate(items))
    labels = [spec.label for spec in specs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise loc.error(f"two requests are named {duplicates[0]!r}: give each a different name", "name", "requests")
    stages_data = data.get("stages", [])
    if not isinstance(stages_data, list):
        raise loc.error("expected [[stages]] tables", "stages")
    stages = tuple(_stage(loc, index, item) for index, item in enumerate(stages_data))
    criteria, abort = _thresholds(loc, data.get("thresholds", {}), set(labels))
    load = {key: _typed(loc, data[key], kind, key) for key, kind in LOAD_KEYS.items() if key in data}
    if "warmup" in data:
        load["warmup"] = _typed(loc, data["warmup"], int, "warmup")
    return Scenario(specs, stages, tuple(criteria), abort, load)
