"""Draw ``docs/_static/architecture.svg``, the contributing page's picture of the package's import rule.

Run: ``python docs/architecture_diagram.py`` after changing the rule. The rooms and the allowed crossings are read
from ``tests/test_architecture.py``, which enforces them, so the picture cannot show another rule
(``tests/test_architecture.py`` checks the file is up to date). Plain SVG text, no drawing library.
"""

from __future__ import annotations

import importlib.util
import sys
from html import escape
from pathlib import Path
from types import ModuleType

DOCS = Path(__file__).resolve().parent
OUTPUT = DOCS / "_static" / "architecture.svg"
RULE = DOCS.parent / "tests" / "test_architecture.py"

FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
DOOR, CONCERN, FOUNDATION, EDGE, INK = "#f2f2f2", "#e8f0f7", "#eef5e9", "#2f6f9f", "#1a1a1a"
BOX_W, BOX_H, GAP, LEFT = 92, 34, 8, 150
ROWS = {"doors": 50, "concerns": 170, "foundations": 290}
CAPTIONS = {
    "doors": ("doors", "paths users write"),
    "concerns": ("concerns", "one package each"),
    "foundations": ("foundations", "imported by all"),
}


def load_rule(path: Path = RULE) -> ModuleType:
    """The rule module (its constants only are used; importing it runs no test)."""
    spec = importlib.util.spec_from_file_location("architecture_rule", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def _row(names: list[str], top: int, fill: str) -> tuple[list[str], dict[str, float]]:
    parts, centres = [], {}
    for index, name in enumerate(names):
        x = LEFT + index * (BOX_W + GAP)
        centres[name] = x + BOX_W / 2
        parts.append(
            f'<rect x="{x}" y="{top}" width="{BOX_W}" height="{BOX_H}" rx="5" fill="{fill}" stroke="{EDGE}"/>'
            f'<text x="{x + BOX_W / 2}" y="{top + 22}" text-anchor="middle" font-size="13" fill="{INK}">'
            f"{escape(name)}</text>"
        )
    return parts, centres


def draw(doors: list[str], concerns: list[str], foundations: list[str], crossings: list[tuple[str, str]]) -> str:
    """The SVG text: three rows of rooms, arrows down between rows, and each allowed crossing between concerns."""
    width = LEFT + max(len(doors), len(concerns), len(foundations)) * (BOX_W + GAP) + 20
    height = ROWS["foundations"] + BOX_H + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'style="{FONT}">',
        '<defs><marker id="a" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
        f'<path d="M0,0 L8,4 L0,8 z" fill="{EDGE}"/></marker></defs>',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    centres: dict[str, float] = {}
    for key, names, fill in (
        ("doors", doors, DOOR),
        ("concerns", concerns, CONCERN),
        ("foundations", foundations, FOUNDATION),
    ):
        row, found = _row(names, ROWS[key], fill)
        parts.extend(row)
        centres.update(found)
        title, note = CAPTIONS[key]
        parts.append(
            f'<text x="12" y="{ROWS[key] + 15}" font-size="14" font-weight="600" fill="{INK}">{title}</text>'
            f'<text x="12" y="{ROWS[key] + 31}" font-size="11" fill="#555">{note}</text>'
        )
    middle = width / 2
    for upper, lower in (("doors", "concerns"), ("concerns", "foundations")):
        y1, y2 = ROWS[upper] + BOX_H + 6, ROWS[lower] - 6
        parts.append(
            f'<line x1="{middle}" y1="{y1}" x2="{middle}" y2="{y2 - 2}" stroke="{EDGE}" stroke-width="2" '
            'marker-end="url(#a)"/>'
        )
    parts.append(
        f'<text x="{middle + 10}" y="{ROWS["concerns"] - 30}" font-size="11" fill="#555">'
        "a concern imports the foundations, never a door, and another concern only along a drawn arc</text>"
    )
    for index, (source, target) in enumerate(crossings):
        x1, x2 = centres[source], centres[target]
        y = ROWS["concerns"] + BOX_H
        dip = 26 + 12 * index
        parts.append(
            f'<path d="M{x1},{y} C{x1},{y + dip} {x2},{y + dip} {x2},{y + 3}" fill="none" stroke="{EDGE}" '
            'stroke-dasharray="4 3" marker-end="url(#a)"/>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def draw_rule(rule: ModuleType) -> str:
    """The picture of ``rule``'s rooms and crossings, each row in alphabetical order."""
    return draw(
        sorted(rule.DOORS),
        sorted(rule.CONCERNS),
        sorted(rule.FOUNDATIONS),
        sorted(rule.ALLOWED_CROSSINGS),
    )


def main() -> int:
    OUTPUT.write_text(draw_rule(load_rule()))
    print(f"wrote {OUTPUT.relative_to(DOCS.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
