"""Write the readable tables of ``docs/api.md`` from the docstrings its autodoc directives name.

The API reference is read in two places: the built site, where Sphinx's autodoc renders every docstring in full,
and GitHub, where a directive would show as raw reStructuredText. So the directives sit in HTML comments, which
GitHub hides and ``docs/conf.py`` turns into ``{eval-rst}`` blocks for Sphinx::

    <!-- autodoc
    .. automodule:: django_prodkit.middleware
       :members: RequestIDMiddleware, AccessLogMiddleware
    -->

and above each such comment this script writes a table of the objects it names with the first paragraph of each
docstring, between ``<!-- api-summary -->`` and ``<!-- /api-summary -->``. Run ``python docs/api_summary.py``
after changing a directive or a docstring; ``--check`` fails when the page is out of date (a test runs it).
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
PAGE = DOCS / "api.md"
AUTODOC = re.compile(r"^<!-- autodoc\n(?P<rst>.*?)\n-->\n", re.M | re.S)
SUMMARY = re.compile(r"<!-- api-summary -->\n.*?<!-- /api-summary -->\n(?=<!-- autodoc\n)", re.S)
_DIRECTIVE = re.compile(r"^\.\. auto(?P<kind>module|class|function)::\s+(?P<target>[\w.]+)(?:\(\))?\s*$")
_MEMBERS = re.compile(r"^\s+:members:\s*(?P<names>.*)$")
#: reStructuredText roles and literals, as Markdown.
_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|exc|obj):`~?(?P<target>[^`]+)`")
_LITERAL = re.compile(r"``(?P<code>[^`]+)``")


def documented(rst: str) -> list[tuple[str, str]]:
    """``(module, name)`` of every object the directives of one comment render; name ``""`` for a module alone."""
    found: list[tuple[str, str]] = []
    lines = rst.splitlines()
    for index, line in enumerate(lines):
        directive = _DIRECTIVE.match(line)
        if directive is None:
            continue
        target = directive["target"]
        if directive["kind"] != "module":
            module, _, name = target.rpartition(".")
            found.append((module, name))
            continue
        members = next((m["names"] for m in map(_MEMBERS.match, lines[index + 1 : index + 3]) if m), None)
        if members is None:
            found.append((target, ""))
        elif members.strip():
            found += [(target, name.strip()) for name in members.split(",")]
        else:
            found += [(target, name) for name in importlib.import_module(target).__all__]
    return found


def summary(obj: Any) -> str:
    """The first paragraph of ``obj``'s docstring on one line, in Markdown; a constant's value if it has none."""
    if not (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)):
        return f"Constant: `{obj!r}`." if len(repr(obj)) <= 60 else "Constant."
    doc = inspect.getdoc(obj) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    first = _ROLE.sub(lambda match: f"`{match['target'].rsplit('.', 1)[-1]}`", first)
    return _LITERAL.sub(lambda match: f"`{match['code']}`", first).replace("|", "\\|")


def table(rst: str) -> str:
    rows: list[str] = []
    module_shown = ""
    for module, name in documented(rst):
        if module != module_shown:
            rows.append(f"| **`{module}`** | {summary(importlib.import_module(module))} |")
            module_shown = module
        if name:
            rows.append(f"| `{name}` | {summary(getattr(importlib.import_module(module), name))} |")
    header = "<!-- api-summary -->\n| object | what it is |\n| --- | --- |\n"
    return header + "\n".join(rows) + "\n<!-- /api-summary -->\n"


def render(markdown: str) -> str:
    """The page with every summary table written from the docstrings under its autodoc comment."""
    markdown = SUMMARY.sub("", markdown)
    return AUTODOC.sub(lambda match: table(match["rst"]) + match[0], markdown)


def main() -> None:
    sys.path.insert(0, str(DOCS.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    current = PAGE.read_text()
    wanted = render(current)
    if "--check" in sys.argv[1:]:
        if current != wanted:
            raise SystemExit("docs/api.md is out of date: run python docs/api_summary.py")
        return
    PAGE.write_text(wanted)
    print("wrote docs/api.md")


if __name__ == "__main__":
    main()
