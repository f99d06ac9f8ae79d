"""Every import and dotted path the README and the docs show resolves: moving a module cannot break a user's code.

A path is resolved as Python would: the longest importable module, then attributes. Logger names
(``django_prodkit.access``) are not modules; they are accepted only when the package really logs under them.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FROM_IMPORT = re.compile(r"^\s*from (django_prodkit[\w.]*) import \(?([\w, \n]+?)\)?\s*(?:#.*)?$", re.M)
_IMPORT = re.compile(r"^\s*import (django_prodkit[\w.]*)", re.M)
_DOTTED = re.compile(r"\bdjango_prodkit(?:\.\w+)+")
_LOGGER = re.compile(r"""getLogger\(\s*["'](django_prodkit[\w.]*)["']""")


def _logger_names() -> set[str]:
    from django_prodkit.conf import DEFAULTS

    names = {DEFAULTS["ACCESS_LOG_LOGGER"]}
    for path in (ROOT / "django_prodkit").rglob("*.py"):
        names.update(_LOGGER.findall(path.read_text()))
    return names


def _documented() -> dict[str, str]:
    """Each documented path (a module, or module:attribute for imports) with the first page that shows it."""
    found: dict[str, str] = {}
    for page in PAGES:
        text = page.read_text()
        name = page.relative_to(ROOT).as_posix()
        for module, names in _FROM_IMPORT.findall(text):
            for attribute in re.split(r"[,\s]+", names.strip()):
                if attribute:
                    found.setdefault(f"{module}:{attribute}", name)
        for module in _IMPORT.findall(text):
            found.setdefault(module, name)
        for dotted in _DOTTED.findall(text):
            found.setdefault(dotted, name)
    return found


def _resolves(path: str) -> bool:
    module, _, attribute = path.partition(":")
    parts = module.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for part in [*parts[cut:], *([attribute] if attribute else [])]:
            if not hasattr(target, part):
                return False
            target = getattr(target, part)
        return True
    return False


DOCUMENTED = _documented()


def test_the_pages_document_the_public_doors() -> None:
    # The collector itself: it finds the paths every user writes, in imports and in settings strings.
    for path in (
        "django_prodkit.middleware.RequestIDMiddleware",
        "django_prodkit.logging:configure_logging",
        "django_prodkit.settings:security_hardening",
        "django_prodkit.urls",
        "django_prodkit.gunicorn",
        "django_prodkit.request_id:get_request_id",
        "django_prodkit.db:current",
    ):
        assert path in DOCUMENTED, path


@pytest.mark.parametrize("path", sorted(DOCUMENTED))
def test_every_documented_path_resolves(path: str) -> None:
    if ":" not in path and path in _logger_names():
        return
    assert _resolves(path), f"{path} (shown in {DOCUMENTED[path]}) does not resolve"


def test_a_moved_module_would_fail() -> None:
    assert not _resolves("django_prodkit.health_checks")
    assert not _resolves("django_prodkit.request_id:no_such_name")
    assert "django_prodkit.health_checks" not in _logger_names()
