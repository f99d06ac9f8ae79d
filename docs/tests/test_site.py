"""The built docs site: no broken internal links, and key pages render in Chromium without errors.

Run by the ``docs`` tox environment after ``sphinx-build``, with ``DOCS_HTML`` pointing at the output.
"""

from __future__ import annotations

import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

HTML = Path(os.environ.get("DOCS_HTML", "docs/_build/html")).resolve()
KEY_PAGES = ["index.html", "quickstart.html", "metrics.html"]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"] or "")
        if tag == "a" and values.get("name"):
            self.ids.add(values["name"] or "")
        for attr in ("href", "src"):
            if values.get(attr) and (tag in {"a", "link", "script", "img"}):
                self.hrefs.append(values[attr] or "")


def _parse(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def _pages() -> list[Path]:
    return sorted(HTML.rglob("*.html"))


@pytest.fixture(scope="module")
def site() -> Path:
    if not (HTML / "index.html").exists():
        pytest.fail(f"no built site at {HTML}; run sphinx-build first (the docs tox env does)")
    return HTML


def test_every_internal_link_and_anchor_resolves(site: Path) -> None:
    parsed = {page: _parse(page) for page in _pages()}
    broken: list[str] = []
    for page, links in parsed.items():
        for href in links.hrefs:
            parts = urlsplit(href)
            if parts.scheme or href.startswith(("//", "mailto:")):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if not target.exists():
                broken.append(f"{page.relative_to(site)} -> {href}")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else _parse(target).ids
                if parts.fragment not in ids:
                    broken.append(f"{page.relative_to(site)} -> {href} (no anchor)")
    assert broken == []


def test_key_pages_render_in_chromium_without_errors(site: Path, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("PRODKIT_REQUIRE_TOOLS") == "1":
            pytest.fail("chromium is required (PRODKIT_REQUIRE_TOOLS=1) but not installed")
        pytest.skip("chromium is not installed (Debian package 'chromium')")
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for name in KEY_PAGES:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.on(
                    "console",
                    lambda m, n=name: (
                        problems.append(f"{n}: console {m.type}: {m.text}") if m.type in {"error", "warning"} else None
                    ),
                )
                page.on("pageerror", lambda e, n=name: problems.append(f"{n}: page error: {e}"))
                page.on("requestfailed", lambda r, n=name: problems.append(f"{n}: failed: {r.url}"))
                page.goto((site / name).as_uri())
                page.wait_for_load_state("load")
                assert page.title(), f"{name} has no title"
                assert page.locator("article").first.inner_text().strip(), f"{name} renders no content"
                shot = tmp_path / f"{name}.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                page.close()
        finally:
            browser.close()
    assert problems == []
