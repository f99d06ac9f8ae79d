"""Writing the generated documents: YAML for Prometheus and Kubernetes without a YAML library."""

from __future__ import annotations

import json
import re
from typing import Any

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")


def _scalar(value: Any) -> str:
    # JSON's strings, numbers and literals are YAML's too; multi-line strings become literal blocks below.
    return json.dumps(value, ensure_ascii=False)


def _key(key: str) -> str:
    return key if _PLAIN_KEY.fullmatch(key) else _scalar(key)


def _lines(value: Any, indent: str) -> list[str]:
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            lines.extend(_entry(f"{indent}{_key(key)}:", item, indent + "  "))
    else:
        for item in value:
            if isinstance(item, dict) and item:
                nested = _lines(item, indent + "  ")
                lines.append(f"{indent}- {nested[0].lstrip()}")
                lines.extend(nested[1:])
            else:
                lines.extend(_entry(f"{indent}-", item, indent + "  "))
    return lines


def _entry(head: str, value: Any, indent: str) -> list[str]:
    if isinstance(value, (dict, list)) and value:
        return [head, *_lines(value, indent)]
    if isinstance(value, dict):
        return [f"{head} {{}}"]
    if isinstance(value, list):
        return [f"{head} []"]
    if isinstance(value, str) and _literal_block(value):
        return [f"{head} |-", *(f"{indent}{line}" if line else "" for line in value.split("\n"))]
    return [f"{head} {_scalar(value)}"]


def _literal_block(text: str) -> bool:
    # A literal block keeps multi-line PromQL readable; it cannot start with a space or keep trailing blanks.
    return "\n" in text and not text.startswith(" ") and not text.endswith((" ", "\n")) and "\t" not in text


def to_yaml(document: dict[str, Any]) -> str:
    """The document as block-style YAML (scalars quoted as JSON, which YAML reads alike)."""
    return "\n".join(_lines(document, "")) + "\n"
