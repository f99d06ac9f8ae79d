"""Sphinx configuration for the django-prodkit documentation."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import django

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
django.setup()

from django_prodkit import __version__  # noqa: E402

if TYPE_CHECKING:
    from sphinx.application import Sphinx

project = "django-prodkit"
author = "the django-prodkit developers"
copyright = "2026, the django-prodkit developers"
release = __version__
version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "tests"]
autodoc_typehints = "description"
autodoc_member_order = "bysource"
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
# Re-exported objects (django_prodkit.request_id re-exports django_prodkit.context.ids) would otherwise get source
# pages whose backlinks name an anchor under the wrong module.
viewcode_follow_imported_members = False

html_theme = "furo"
html_title = f"django-prodkit {__version__}"

# index.md lists the pages as plain Markdown links under "## " headings, so it reads well on GitHub; Sphinx gets
# the same lists as hidden toctrees (the sidebar's navigation), one per heading, captioned with it.
_SECTION = re.compile(r"^## (?P<caption>.+)\n(?P<body>(?:(?!## ).*\n?)*)", re.M)
_PAGE_LINK = re.compile(r"^- \[[^\]]+\]\((?P<page>[\w-]+)\.md\)", re.M)


def index_toctrees(markdown: str) -> str:
    """The hidden toctree directives that mirror the link lists of ``index.md``."""
    toctrees = []
    for section in _SECTION.finditer(markdown):
        pages = _PAGE_LINK.findall(section["body"])
        if pages:
            entries = "\n".join(pages)
            toctrees.append(f"\n```{{toctree}}\n:hidden:\n:caption: {section['caption']}\n\n{entries}\n```\n")
    return "".join(toctrees)


def _add_index_toctrees(app: Sphinx, docname: str, source: list[str]) -> None:
    if docname == "index":
        source[0] += index_toctrees(source[0])


# api.md keeps its autodoc directives in HTML comments, which GitHub hides; Sphinx gets them as {eval-rst} blocks
# (docs/api_summary.py writes the readable tables beside them).
_AUTODOC = re.compile(r"^<!-- autodoc\n(?P<rst>.*?)\n-->\n", re.M | re.S)


def _render_autodoc(app: Sphinx, docname: str, source: list[str]) -> None:
    if docname == "api":
        source[0] = _AUTODOC.sub(lambda match: f"```{{eval-rst}}\n{match['rst']}\n```\n", source[0])


def setup(app: Sphinx) -> None:
    app.connect("source-read", _add_index_toctrees)
    app.connect("source-read", _render_autodoc)
