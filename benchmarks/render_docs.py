"""Fill the docs' benchmark tables and charts from the results files that ``make bench`` writes.

Run: ``python benchmarks/render_docs.py`` (the last step of ``make bench``), ``--check`` to fail when a page or a
chart differs from what the results give (a test runs it), ``--list`` to print every block a page can show.

Each script ``benchmarks/<script>.py`` writes ``benchmarks/results/<script>.json`` and defines
``tables(result) -> dict[str, str]``, Markdown by block name, and may define ``charts(result) -> dict[str, str]``,
SVG by chart name, written to ``docs/_static/bench-<script>-<name>.svg``. A page shows a block between

    <!-- bench:<script>:<block> -->
    <!-- /bench -->

and this script writes the block in between (markers inside fenced code are examples, left alone). So a measured
number is never typed by hand, and two pages cannot quote two runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
STATIC = ROOT / "docs" / "_static"
MARKER = re.compile(r"^<!-- bench:(?P<script>[a-z0-9_]+):(?P<block>[a-z0-9_-]+) -->$")
END = "<!-- /bench -->"
_FENCE = re.compile(r"^(`{3,}|~{3,})")


class RenderError(Exception):
    """A marker that names no script, results file or block, or a marker left open."""


def pages(root: Path = ROOT) -> list[Path]:
    return [*sorted((root / "docs").glob("*.md")), root / "README.md"]


def _script_output(script: str, function: str, results: Path) -> dict[str, str]:
    path = results / f"{script}.json"
    if not path.exists():
        raise RenderError(f"no results for {script}: run benchmarks/{script}.py (or make bench)")
    module = importlib.import_module(f"benchmarks.{script}")
    make: Callable[[dict[str, Any]], dict[str, str]] | None = getattr(module, function, None)
    if make is None:
        if function == "tables":
            raise RenderError(f"benchmarks/{script}.py defines no tables(result)")
        return {}
    return make(json.loads(path.read_text()))


def render_page(text: str, tables: Callable[[str], dict[str, str]], where: str = "") -> str:
    """``text`` with every marker's block filled from ``tables(script)``."""
    lines = text.split("\n")
    out: list[str] = []
    fence: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        out.append(line)
        index += 1
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence = opening.group(1)
            continue
        if fence is not None:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
            continue
        marker = MARKER.match(line)
        if marker is None:
            continue
        try:
            end = lines.index(END, index)
        except ValueError:
            raise RenderError(f"{where}:{index}: {line} has no {END}") from None
        blocks = tables(marker["script"])
        if marker["block"] not in blocks:
            script, known = marker["script"], ", ".join(sorted(blocks))
            raise RenderError(f"{where}:{index}: benchmarks/{script}.py has no block {marker['block']!r}: {known}")
        out += ["", blocks[marker["block"]].strip(), "", END]
        index = end + 1
    return "\n".join(out)


def render(root: Path = ROOT, results: Path = RESULTS) -> dict[Path, str]:
    """Every page and chart file, as the results files say it should be (only those that have content)."""
    cache: dict[tuple[str, str], dict[str, str]] = {}

    def output(script: str, function: str) -> dict[str, str]:
        if (script, function) not in cache:
            cache[script, function] = _script_output(script, function, results)
        return cache[script, function]

    wanted: dict[Path, str] = {}
    for page in pages(root):
        text = page.read_text()
        wanted[page] = render_page(text, lambda script: output(script, "tables"), page.relative_to(root).as_posix())
    for path in sorted(results.glob("*.json")):
        for name, svg in output(path.stem, "charts").items():
            wanted[root / "docs" / "_static" / f"bench-{path.stem}-{name}.svg"] = svg
    return wanted


def stale(root: Path = ROOT, results: Path = RESULTS) -> list[str]:
    """The files that differ from what the results give."""
    return [
        path.relative_to(root).as_posix()
        for path, text in render(root, results).items()
        if not path.exists() or path.read_text() != text
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="fail when a page or chart is not up to date")
    parser.add_argument("--list", action="store_true", help="print every script's block and chart names")
    args = parser.parse_args()
    try:
        if args.list:
            for path in sorted(RESULTS.glob("*.json")):
                for function in ("tables", "charts"):
                    for name in _script_output(path.stem, function, RESULTS):
                        print(f"{function[:-1]} {path.stem}:{name}")
            return
        if args.check:
            outdated = stale()
            if outdated:
                raise SystemExit(f"not up to date with benchmarks/results (run benchmarks/render_docs.py): {outdated}")
            print("the docs are up to date with benchmarks/results")
            return
        for path, text in render().items():
            if not path.exists() or path.read_text() != text:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                print(f"wrote {path.relative_to(ROOT)}")
    except RenderError as error:
        raise SystemExit(str(error)) from None


if __name__ == "__main__":
    main()
