"""The fenced code blocks of the Markdown docs, and the marker that says how each one is tested.

The code people read is the code that is tested: pages keep their samples inline, and
``tests/test_doc_snippets.py`` extracts and runs them. A comment on the line right before a fence says how;
GitHub and Sphinx show nothing of it::

    <!-- test: settings -->
    ```python
    PRODKIT = {"SERVICE_NAME": "blog-api"}
    ```

``<!-- test: KIND [NAME] [-- REASON] -->``, where KIND is one of:

``settings``
    appended to the ``settings.py`` of a project that followed the quickstart (``startproject``, then the
    quickstart's settings block, then the page's earlier settings blocks). It changes the quickstart's settings
    (``MIDDLEWARE.insert(...)``, ``PRODKIT["KEY"] = ...``), never writes ``MIDDLEWARE`` or ``PRODKIT`` whole.
    django-prodkit's system checks must report nothing, its middleware must be in the overview's order, the
    quickstart's keys must survive, and a health probe through that ``MIDDLEWARE`` answers 200. Every page's
    settings blocks are also pasted together, in the order of ``docs/index.md``, into one project that must pass
    ``check --deploy``.
``urls``
    appended to the ``urls.py`` that ``startproject`` writes and served; every route it adds without a
    converter is requested and must answer neither 404 nor a server error.
``gunicorn``
    a ``gunicorn.conf.py``, loaded and validated the way gunicorn loads one.
``python``
    run on its own as a module; it must not raise.
``custom``
    run only by the test that names it (NAME is required, and a test under ``tests/`` must use it).
``skip``
    not runnable (a fragment, a placeholder); REASON is required.

NAME (letters, digits, ``-``) lets a test fetch the block with :func:`block` to check more than its kind does
(the JSON a URL block serves, the log lines a settings block writes). Every ``python`` block must carry a
marker; ``json`` blocks need none (each one must parse) but may carry a NAME or ``skip``.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
KINDS = frozenset({"settings", "urls", "gunicorn", "python", "custom", "skip"})
PYTHON = frozenset({"python", "python3", "py", "pycon"})
MARKER = re.compile(
    r"^<!--\s*test:\s*(?P<kind>[a-z]+)(?:\s+(?P<name>[A-Za-z0-9-]+))?(?:\s+--\s*(?P<reason>.*?))?\s*-->\s*$"
)
_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a page, with its marker if it has one."""

    page: str
    line: int
    lang: str
    code: str
    marker: str | None
    kind: str | None
    name: str | None
    reason: str | None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """Every Markdown page whose code blocks are tested: the docs and the README."""
    return [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]


def page_blocks(path: Path, root: Path = ROOT) -> list[Block]:
    """The fenced blocks of ``path``, in order (fences nested in a longer fence are content)."""
    lines = path.read_text().splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence = opening["fence"]
        end = index + 1
        while end < len(lines) and not _closes(lines[end], fence):
            end += 1
        previous = lines[index - 1] if index else ""
        marker = MARKER.match(previous)
        found.append(
            Block(
                page=path.relative_to(root).as_posix(),
                line=index + 1,
                lang=opening["info"].split()[0] if opening["info"].strip() else "",
                code="\n".join(lines[index + 1 : end]) + "\n",
                marker=previous if previous.startswith("<!--") else None,
                kind=marker["kind"] if marker else None,
                name=marker["name"] if marker else None,
                reason=marker["reason"] if marker else None,
            )
        )
        index = end + 1
    return found


def _closes(line: str, fence: str) -> bool:
    return line.startswith(fence) and not line.strip().strip(fence[0])


def all_blocks() -> list[Block]:
    return [found for path in pages() for found in page_blocks(path)]


def block(name: str) -> Block:
    """The one block marked with ``name`` in any page."""
    (found,) = [candidate for candidate in all_blocks() if candidate.name == name]
    return found


def blocks_of_kind(kind: str) -> list[Block]:
    return [candidate for candidate in all_blocks() if candidate.kind == kind]


def index_order() -> list[Path]:
    """The pages in the order ``docs/index.md`` lists them (the order a reader meets them), then the README."""
    listed = re.findall(r"^- \[[^\]]+\]\(([\w-]+\.md)\)", (DOCS / "index.md").read_text(), re.M)
    return [DOCS / name for name in listed] + [ROOT / "README.md"]


def settings_blocks_in_index_order() -> list[Block]:
    """Every ``settings`` block, page by page in the index's order: what a reader pastes after the quickstart."""
    return [found for path in index_order() for found in page_blocks(path) if found.kind == "settings"]


def middleware_order() -> list[str]:
    """Our middleware's dotted paths in the order the overview lists them (the one order every page keeps)."""
    spec = importlib.util.spec_from_file_location("middleware_diagram", DOCS / "middleware_diagram.py")
    assert spec is not None
    assert spec.loader is not None
    diagram = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diagram)
    layers: list[str] = diagram.layers((DOCS / "overview.md").read_text())
    return [f"django_prodkit.middleware.{layer}" for layer in layers if layer != diagram.DJANGO]
