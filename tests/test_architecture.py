"""The package's shape, as docs/contributing.md draws it: one package per concern, arrows pointing down.

Read from the source with ``ast`` (nothing is imported), so a new import that breaks the rule fails here with the
file and the line, and the picture in the docs cannot drift from the code.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "django_prodkit"

#: The doors: the modules whose paths users write. They may import anything; nothing below imports them.
DOORS = frozenset({"apps", "checks", "gunicorn", "logging", "management", "middleware", "settings", "urls", "views"})
#: What every concern stands on: configuration, the unit of work's context, where our middleware sits.
FOUNDATIONS = frozenset({"conf", "context", "stack"})
#: One package per concern, each with its own checks.py when it has settings to check.
CONCERNS = frozenset(
    {
        "cloudwatch",
        "db",
        "health",
        "loadtest",
        "logs",
        "metrics",
        "objectives",
        "outbound",
        "request_id",
        "security",
        "tasks",
        "tracing",
    }
)
#: The only arrows between concerns, each to the other's public modules, with the reason.
ALLOWED_CROSSINGS: dict[tuple[str, str], frozenset[str]] = {
    # The publisher observes every request the metrics count; the store never knows it.
    ("cloudwatch", "metrics"): frozenset({"django_prodkit.metrics.observers"}),
    # Task runs are counted into the same store and observed like requests.
    ("tasks", "metrics"): frozenset({"django_prodkit.metrics", "django_prodkit.metrics.store"}),
    # A task run and an outgoing call open a span with whichever tracer is on.
    ("tasks", "tracing"): frozenset({"django_prodkit.tracing.backend", "django_prodkit.tracing.base"}),
    ("outbound", "tracing"): frozenset({"django_prodkit.tracing.backend", "django_prodkit.tracing.base"}),
    # Objectives are written against the metrics the kit exposes: the histogram's bucket edges...
    ("objectives", "metrics"): frozenset({"django_prodkit.metrics.store"}),
    # ...and the names and dimensions CloudWatch receives.
    ("objectives", "cloudwatch"): frozenset({"django_prodkit.cloudwatch.config", "django_prodkit.cloudwatch.emf"}),
    # The metrics over OTLP sign for CloudWatch with the one SigV4 signer the traces use for X-Ray.
    ("metrics", "tracing"): frozenset({"django_prodkit.tracing.otel.sigv4"}),
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module's dotted name
    target: str  # the imported module's dotted name
    where: str  # file:line

    @property
    def source_room(self) -> str:
        return _room(self.source)

    @property
    def target_room(self) -> str:
        return _room(self.target)


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> list[Import]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "django_prodkit":
                    targets = [f"django_prodkit.{alias.name}" for alias in node.names]
                elif node.module.startswith("django_prodkit."):
                    targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name.startswith("django_prodkit")]
            where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"
            found.extend(Import(source, target, where) for target in targets)
    return found


IMPORTS = _imports()


def _violations(rule: str) -> list[str]:
    bad = []
    for imp in IMPORTS:
        source, target = imp.source_room, imp.target_room
        if source == target or target == "__init__" or source in DOORS:
            continue
        if rule == "doors" and target in DOORS:
            bad.append(f"{imp.where}: {imp.source} imports the door {imp.target}")
        if rule == "foundations" and source in FOUNDATIONS and target not in DOORS:
            bad.append(f"{imp.where}: the foundation {imp.source} imports {imp.target}")
        if rule == "concerns" and source in CONCERNS and target in CONCERNS:
            allowed = ALLOWED_CROSSINGS.get((source, target), frozenset())
            if imp.target not in allowed:
                bad.append(f"{imp.where}: {imp.source} reaches into {imp.target}")
    return bad


def test_every_module_is_a_door_a_foundation_or_in_a_concern() -> None:
    rooms = {path.stem if path.is_file() else path.name for path in PACKAGE.iterdir() if path.suffix in {"", ".py"}}
    rooms -= {"__init__", "__pycache__", "py"}
    assert rooms == DOORS | FOUNDATIONS | CONCERNS


def test_every_concern_is_a_package_and_its_system_checks_are_in_checks_py() -> None:
    for room in CONCERNS | FOUNDATIONS:
        assert (PACKAGE / room / "__init__.py").is_file(), room
    for path in PACKAGE.rglob("*checks*.py"):
        assert path.name == "checks.py", f"{path}: Django system checks live in a concern's checks.py"


@pytest.mark.parametrize("rule", ["doors", "foundations", "concerns"])
def test_imports_follow_the_rule(rule: str) -> None:
    assert _violations(rule) == []


def test_the_rule_catches_a_concern_reaching_into_another() -> None:
    # The rule itself is tested: the inversion the restructuring removed (db -> tracing) would be reported.
    IMPORTS.append(Import("django_prodkit.db.counting", "django_prodkit.tracing.backend", "db/counting.py:1"))
    IMPORTS.append(Import("django_prodkit.context.ids", "django_prodkit.tasks.runs", "context/ids.py:1"))
    IMPORTS.append(Import("django_prodkit.metrics.recording", "django_prodkit.middleware", "metrics/recording.py:1"))
    try:
        assert _violations("concerns") == [
            "db/counting.py:1: django_prodkit.db.counting reaches into django_prodkit.tracing.backend"
        ]
        assert _violations("foundations") == [
            "context/ids.py:1: the foundation django_prodkit.context.ids imports django_prodkit.tasks.runs"
        ]
        assert _violations("doors") == [
            "metrics/recording.py:1: django_prodkit.metrics.recording imports the door django_prodkit.middleware"
        ]
    finally:
        del IMPORTS[-3:]


def test_the_load_engine_imports_nothing_of_the_request_path() -> None:
    reached = {imp.target for imp in IMPORTS if imp.source_room == "loadtest" and imp.target_room != "loadtest"}
    assert reached <= {"django_prodkit.__version__", "django_prodkit"}


def test_modules_stay_under_the_house_size() -> None:
    # STYLE.md: each module well under ~300 lines; the limit here leaves a little room, not a lot.
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 330
    }
    assert long == {}


def test_the_picture_in_the_docs_is_drawn_from_this_rule() -> None:
    script = PACKAGE.parent / "docs" / "architecture_diagram.py"
    spec = importlib.util.spec_from_file_location("architecture_diagram", script)
    assert spec is not None
    assert spec.loader is not None
    diagram = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diagram)
    expected = diagram.draw_rule(diagram.load_rule())
    assert diagram.OUTPUT.read_text() == expected, "run: python docs/architecture_diagram.py"
