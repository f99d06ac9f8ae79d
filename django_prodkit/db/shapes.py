"""SQL shapes: a statement with every literal, placeholder and comment taken out, for the warning line.

The docs promise that no literal reaches the log, so each backend's literal forms are matched in one left-to-right
scan, which is how the database reads them too: a ``--`` inside a string is part of the string, a quote inside a
comment is part of the comment. A literal that is never closed runs to the end of the statement, like the database
would read it, so nothing after an odd quote is written either.

- every backend: ``'...'`` (``''`` inside), ``X'..'``, ``B'..'``, ``N'..'``, ``0x..``, ``--`` and ``/* */`` comments;
- PostgreSQL: ``E'..'`` (backslash escapes), ``U&'..'``, ``$$..$$`` and ``$tag$..$tag$``;
- MySQL and MariaDB: backslash escapes in strings, ``"..."`` strings (unless ``ANSI_QUOTES``; a shape that loses an
  identifier is better than a log that shows a string), ``_charset'..'``, ``0b..`` and ``#`` comments;
- Oracle: ``q'[..]'`` and the other alternative quotes.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping

#: How many SQL shapes the warning line names.
REPEATED_SHAPES = 3
#: Longest SQL shape written to the warning line; longer ones are cut.
MAX_SHAPE_LENGTH = 300

_LITERAL = "?"

_COMMENT = r"/\*.*?(?:\*/|\Z)|--[^\n]*"
_PLAIN_STRING = r"(?:\b[xXbBnN])?'(?:[^']|'')*(?:'|\Z)"
_HEX = r"\b0[xX][0-9a-fA-F]+\b"

_VENDOR_FORMS: dict[str, list[str]] = {
    "postgresql": [
        r"\$(?P<tag>[A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*|)\$.*?(?:\$(?P=tag)\$|\Z)",
        r"\b[eE]'(?:[^'\\]|\\.|'')*(?:'|\Z)",
        r"\b[uU]&'(?:[^']|'')*(?:'|\Z)",
    ],
    "mysql": [
        r"#[^\n]*",
        r"(?:\b[xXbBnN]|\b_[A-Za-z0-9]+)?'(?:[^'\\]|\\.|'')*(?:'|\Z)",
        r'"(?:[^"\\]|\\.|"")*(?:"|\Z)',
        r"\b0[bB][01]+\b",
    ],
    "oracle": [r"\b[nN]?[qQ]'(?:\[.*?\]|\{.*?\}|\(.*?\)|<.*?>|(?P<q>[^\s\[{(<]).*?(?P=q))(?:'|\Z)"],
}


def _scanner(forms: list[str]) -> re.Pattern[str]:
    # Comments first (they may hold quotes), then the backend's own forms, then the plain string and hex number.
    alternatives = [_COMMENT, *forms, _PLAIN_STRING, _HEX]
    return re.compile("|".join(f"(?:{form})" for form in alternatives), re.DOTALL)


_SCANNERS = {vendor: _scanner(forms) for vendor, forms in _VENDOR_FORMS.items()}
_SCANNERS["sqlite"] = _scanner([])
#: An unknown backend (a third-party one) gets every form but the ones that would take identifiers for strings.
_GENERIC = _scanner(_VENDOR_FORMS["postgresql"] + _VENDOR_FORMS["oracle"])

_PLACEHOLDER = re.compile(r"%s|%\([^)]*\)s|\$\d+")
_NUMBER = re.compile(r"(?<![\w.\"`$?])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b")
_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")
_ROWS = re.compile(r"\(\?(?:, \.\.\.)?\)(?:\s*,\s*\(\?(?:, \.\.\.)?\))+")
_SPACE = re.compile(r"\s+")
# A plain column list (the ORM names every column) says nothing about N+1 and hides the WHERE clause.
_COLUMNS = re.compile(r"\bSELECT (DISTINCT )?([^,()]+), [^()]*? FROM\b")


_COMMENT_STARTS = ("--", "/*", "#")


def _replace(match: re.Match[str]) -> str:
    return " " if match.group(0).startswith(_COMMENT_STARTS) else _LITERAL


def sql_shape(sql: str, vendor: str | None = None) -> str:
    """``sql`` with literals, placeholders and comments taken out, lists collapsed and whitespace folded.

    ``vendor`` is the connection's (``"postgresql"``, ``"mysql"``, ``"sqlite"``, ``"oracle"``); without it every
    form but MySQL's double-quoted strings is taken out.
    """
    shape = _SCANNERS.get(vendor or "", _GENERIC).sub(_replace, sql)
    shape = _PLACEHOLDER.sub(_LITERAL, shape)
    shape = _NUMBER.sub(_LITERAL, shape)
    shape = _SPACE.sub(" ", shape).strip()
    shape = _LIST.sub("(?, ...)", shape)
    shape = _ROWS.sub("(?, ...), ...", shape)
    shape = _COLUMNS.sub(r"SELECT \1\2, ... FROM", shape)
    if len(shape) > MAX_SHAPE_LENGTH:
        shape = shape[: MAX_SHAPE_LENGTH - 3] + "..."
    return shape


def repeated_shapes(statements: Mapping[tuple[str, str], int], limit: int = REPEATED_SHAPES) -> list[tuple[str, int]]:
    """The ``limit`` most repeated shapes of ``{(vendor, sql): count}``, most repeated first (ties by shape)."""
    shapes: Counter[str] = Counter()
    for (vendor, sql), count in statements.items():
        shapes[sql_shape(sql, vendor)] += count
    return sorted(shapes.items(), key=lambda item: (-item[1], item[0]))[:limit]
