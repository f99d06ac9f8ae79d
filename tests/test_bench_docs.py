"""Every measured number in the docs comes from ``benchmarks/results/``: the pages and charts are up to date."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from benchmarks.charts import bar_chart
from benchmarks.render_docs import END, MARKER, RESULTS, RenderError, pages, render_page, stale

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "docs" / "_static"


def bench_scripts() -> list[str]:
    match = re.search(r"^BENCH_SCRIPTS := (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match is not None
    return match.group(1).split()


def test_the_docs_are_up_to_date_with_the_results_files() -> None:
    assert stale() == [], "run: python benchmarks/render_docs.py"


def test_the_check_mode_passes_here_and_finds_a_stale_page(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "render_docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    copy = tmp_path / "repo"
    (copy / "docs" / "_static").mkdir(parents=True)
    for page in pages():
        (copy / page.relative_to(ROOT)).write_text(page.read_text())
    for chart in STATIC.glob("bench-*.svg"):
        (copy / chart.relative_to(ROOT)).write_text(chart.read_text())
    assert stale(copy) == []
    readme = copy / "README.md"
    readme.write_text(re.sub(r"\| \d+\.\d\d \|", "| 3.38 |", readme.read_text(), count=1))
    assert stale(copy) == ["README.md"]


@pytest.mark.parametrize("script", bench_scripts())
def test_every_benchmark_has_results_and_tables(script: str) -> None:
    result = json.loads((RESULTS / f"{script}.json").read_text())
    blocks = importlib.import_module(f"benchmarks.{script}").tables(result)
    assert blocks
    assert all(isinstance(text, str) and text.strip() for text in blocks.values())


def test_every_marker_names_a_block_and_every_chart_is_shown() -> None:
    shown = "".join(page.read_text() for page in pages())
    markers = [line for line in shown.splitlines() if line.startswith("<!-- bench:")]
    assert len(markers) >= 15
    assert all(MARKER.match(line) for line in markers), markers
    charts = {path.name for path in STATIC.glob("bench-*.svg")}
    assert charts
    referenced = set(re.findall(r"\(_static/(bench-[\w-]+\.svg)\)", shown))
    assert referenced == charts


@pytest.mark.parametrize("chart", sorted(STATIC.glob("bench-*.svg")), ids=lambda path: path.name)
def test_every_chart_is_well_formed_svg(chart: Path) -> None:
    root = ET.fromstring(chart.read_text())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}title") is not None


def test_a_marker_is_filled_and_a_fenced_example_is_left_alone() -> None:
    page = "\n".join(
        [
            "# Page",
            "<!-- bench:demo:table -->",
            "old, hand-typed 3.38 us",
            END,
            "```markdown",
            "<!-- bench:demo:missing -->",
            END,
            "```",
            "",
        ]
    )
    rendered = render_page(page, lambda script: {"table": "| a |\n| --- |\n| 1 |"})
    assert rendered.split("\n") == [
        "# Page",
        "<!-- bench:demo:table -->",
        "",
        "| a |",
        "| --- |",
        "| 1 |",
        "",
        END,
        "```markdown",
        "<!-- bench:demo:missing -->",
        END,
        "```",
        "",
    ]
    assert render_page(rendered, lambda script: {"table": "| a |\n| --- |\n| 1 |"}) == rendered


def test_an_unknown_block_or_an_open_marker_is_an_error() -> None:
    with pytest.raises(RenderError, match="no block 'nope'"):
        render_page("<!-- bench:demo:nope -->\n<!-- /bench -->\n", lambda script: {"table": "x"})
    with pytest.raises(RenderError, match="has no"):
        render_page("<!-- bench:demo:table -->\nx\n", lambda script: {"table": "x"})


def test_a_bar_chart_scales_bars_to_the_largest_value() -> None:
    svg = bar_chart("Title <&>", "us", [("ours", 5.0, True), ("peer", 50.0, False), ("noise", -2.0, False)])
    widths = [float(w) for w in re.findall(r'<rect x="\d+" y="\d+" width="([\d.]+)" height="18"', svg)]
    assert widths == [33.0, 330.0, 0.0]
    assert "Title &lt;&amp;&gt;" in svg
    ET.fromstring(svg)
