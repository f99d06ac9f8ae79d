"""Names and figures the docs repeat come from one place, and the pages read on GitHub as they do in the site.

Each test names the one source (the code, ``pyproject.toml``, the overview) and fails on a page that says
otherwise: a percentile bound, a version, an extra, an environment variable, the middleware's name. MyST-only
markup, which GitHub shows raw, is refused outside an allowed list.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from django_prodkit import __version__
from django_prodkit.conf import ENV_OVERRIDES
from django_prodkit.metrics.store import PERCENTILE_ERROR, default_buckets, percentile_error_bound
from tests.doc_blocks import DOCS, ROOT, middleware_order, page_blocks, pages

CHANGELOG = ROOT / "CHANGELOG.md"


def texts() -> dict[str, str]:
    """Every page a user reads: the docs, the README and the changelog."""
    return {path.relative_to(ROOT).as_posix(): path.read_text() for path in [*pages(), CHANGELOG]}


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The numbered lines of a page outside its fenced blocks (the fences' own lines included)."""
    inside: set[int] = set()
    for found in page_blocks(path, path.parent):
        inside.update(range(found.line + 1, found.line + 1 + found.code.count("\n")))
    return [(number, line) for number, line in enumerate(path.read_text().splitlines(), 1) if number not in inside]


def figure(value: float) -> str:
    return f"{value:g}"


# --- figures -----------------------------------------------------------------------------------------------------

#: How the pages state the percentile promise of the metrics (and of the task metrics, same buckets).
_PROMISE = re.compile(
    r"(?:percentiles?|p50/p95/p99|p95_ms)[^.|]*?within (?P<a>\d+(?:\.\d+)?) ?%"
    r"|within (?P<b>\d+(?:\.\d+)?) ?% (?:like the request percentiles|of the exact value)"
    r"|\((?P<c>\d+(?:\.\d+)?) ?% percentile bound\)"
)


def test_the_percentile_promise_is_the_stores_in_every_page() -> None:
    promise = figure(PERCENTILE_ERROR * 100)
    stated = [
        (name, match["a"] or match["b"] or match["c"])
        for name, text in texts().items()
        # The load tester's histogram is another one, with its own bound.
        if name != "docs/load-testing.md"
        for match in _PROMISE.finditer(text)
        if "fixed-edge histogram" not in text[max(0, match.start() - 80) : match.end()]
    ]
    assert len(stated) >= 6, stated  # metrics, settings, checks, background tasks, changelog
    assert [(name, value) for name, value in stated if value != promise] == []
    # The hints of the bucket checks say it too.
    hints = re.findall(r"percentiles within (\d+) ?%", (ROOT / "django_prodkit" / "metrics" / "checks.py").read_text())
    assert hints
    assert set(hints) == {promise}


def test_the_default_buckets_exact_bound_is_the_one_computed() -> None:
    bound = percentile_error_bound(default_buckets())
    assert bound <= PERCENTILE_ERROR
    text = (DOCS / "metrics.md").read_text()
    match = re.search(r"`percentile_error_bound\(\)` computes the bound of any bucket list \((?P<v>[\d.]+) %", text)
    assert match is not None
    assert match["v"] == f"{bound * 100:.2f}"
    assert f"the default {len(default_buckets())} " in (DOCS / "settings.md").read_text()


# --- versions ----------------------------------------------------------------------------------------------------

_VERSION_MENTION = re.compile(
    r"\b(?:[Bb]efore|[Ss]ince|[Ff]rom|[Uu]ntil|[Aa]s of|[Ii]n|[Aa]fter|[Vv]ersion)\s+v?(?P<version>\d+\.\d+(?:\.\d+)?)"
    r"(?!\s*(?:ms|s|us|%|x|seconds|GB|MB|vCPU|LTS)\b)(?![\d.])"
)


def released_versions() -> set[str]:
    return set(re.findall(r"^## (\d+\.\d+\.\d+)", CHANGELOG.read_text(), re.M))


def test_pages_name_only_versions_that_exist() -> None:
    """A "before 1.1" in a package at 0.1.0 sends readers after releases that never happened."""
    known = released_versions() | {__version__}
    mentions = [
        f"{name}: {match[0]!r}"
        for name, text in texts().items()
        for match in _VERSION_MENTION.finditer(text)
        if match["version"] not in known and not _is_a_dependency_version(text, match.start())
    ]
    assert mentions == []


def _is_a_dependency_version(text: str, position: int) -> bool:
    """Django's, Python's, the kernel's, a provider's or a schema's version (named just before it), not ours."""
    before = text[max(0, position - 40) : position]
    owners = r"(?:Django|Python|provider|[Ss]chema|protocol|TLS|HTTP|[Ss]ignature|gunicorn|[Kk]ernels?|Linux)"
    return bool(re.search(owners, before))


# --- extras and install lines ------------------------------------------------------------------------------------


def extras() -> list[str]:
    pyproject = (ROOT / "pyproject.toml").read_text()
    section = pyproject.split("[project.optional-dependencies]\n", 1)[1].split("\n[", 1)[0]
    return re.findall(r"^([\w-]+) = \[", section, re.M)


def test_the_every_extra_install_line_has_every_extra() -> None:
    text = (DOCS / "installation.md").read_text()
    match = re.search(r"with every extra:\n\n```console\n\$ pip install -e \"\.\[(?P<extras>[\w,-]+)\]\"", text)
    assert match is not None
    assert sorted(match["extras"].split(",")) == sorted(extras())
    table = re.findall(r"^\| `([\w-]+)` \| ", text.split("| extra | installs |", 1)[1], re.M)
    assert sorted(table) == sorted(extras())


def test_install_lines_name_only_real_extras() -> None:
    named = {
        extra
        for text in texts().values()
        for group in re.findall(r"django-prodkit\[([\w,-]+)\]|\"\.+\[([\w,-]+)\]\"", text)
        for extra in ",".join(group).split(",")
        if extra
    }
    assert named <= set(extras())


# --- names -------------------------------------------------------------------------------------------------------


_OUR_VARIABLE = re.compile(r"(?<![\w.])((?:PRODKIT|ENABLE)_[A-Z][A-Z_]*)\b")


def variables_the_code_reads() -> set[str]:
    """The documented overrides, and every ``PRODKIT_*``/``ENABLE_*`` name a Python file quotes."""
    quoted = re.compile(r"[\"']((?:PRODKIT|ENABLE)_[A-Z][A-Z_]*)[\"']")
    sources = [ROOT / "django_prodkit", ROOT / "tests", ROOT / "example_project", ROOT / "benchmarks"]
    found = {name for folder in sources for path in folder.rglob("*.py") for name in quoted.findall(path.read_text())}
    return found | {override.variable for override in ENV_OVERRIDES}


def test_environment_variables_the_docs_name_exist() -> None:
    """``METRICS_TOKEN`` in the quickstart and ``PRODKIT_METRICS_TOKENS`` elsewhere: one name, the code's."""
    named = {name for text in texts().values() for name in _OUR_VARIABLE.findall(text)}
    assert "PRODKIT_METRICS_TOKENS" in named
    assert sorted(named - variables_the_code_reads()) == []
    assert re.search(r"\bMETRICS_TOKEN\b", "".join(texts().values())) is None


def test_the_quickstart_exports_only_variables_the_code_reads() -> None:
    variables = variables_the_code_reads()
    for page in (DOCS / "quickstart.md", ROOT / "README.md"):
        exported = set(re.findall(r"export (\w+)=", page.read_text()))
        bearer = set(re.findall(r"Bearer \$(\w+)", page.read_text()))
        assert bearer <= exported | variables
        assert exported <= variables


def test_xray_middleware_is_named_only_as_tracing_middlewares_old_name() -> None:
    """The middleware is ``TracingMiddleware``; ``XRayMiddleware`` appears only where a page says it is the alias."""
    stray = [
        f"{name}:{number}"
        for name, text in texts().items()
        for number, line in enumerate(text.splitlines(), 1)
        if re.search(r"(?<!aws-xray-sdk )\bXRayMiddleware\b", line) and not re.search(r"alias|old name", line)
    ]
    assert stray == []


def test_the_access_log_is_placed_right_after_the_request_id_everywhere() -> None:
    """One place for ``AccessLogMiddleware``: second, as the overview lists and ``prodkit.W051`` checks."""
    contrary = re.compile(r"AccessLogMiddleware[^.]{0,60}\b(?:at the bottom|last in|at the end of)\b", re.I)
    found = [f"{name}: {m[0]!r}" for name, text in texts().items() for m in contrary.finditer(" ".join(text.split()))]
    assert found == []


# --- GitHub reads the raw Markdown -------------------------------------------------------------------------------

#: MyST syntax that GitHub shows as it is typed.
MYST_ONLY = {
    "directive fence": re.compile(r"^(?:`{3,}|~{3,})\{[\w-]+\}"),
    "colon fence": re.compile(r"^:{3,}"),
    "role": re.compile(r"\{[a-z][\w:-]*\}`"),
    "definition list": re.compile(r"^: "),
    "target": re.compile(r"^\([\w-]+\)=\s*$"),
    "comment": re.compile(r"^% "),
}
#: Where MyST-only markup stays, and why.
ALLOWED_MYST = {
    # The site's changelog page is CHANGELOG.md itself; on GitHub, readers open CHANGELOG.md.
    ("docs/changelog.md", "directive fence"),
}


def _outside_inline_code(line: str, position: int) -> bool:
    return line[:position].count("`") % 2 == 0


def test_no_myst_only_markup_outside_the_allowed_list() -> None:
    found = []
    for path in pages():
        name = path.relative_to(ROOT).as_posix()
        for number, line in prose_lines(path):
            for kind, pattern in MYST_ONLY.items():
                match = pattern.search(line)
                if match and _outside_inline_code(line, match.start()) and (name, kind) not in ALLOWED_MYST:
                    found.append(f"{name}:{number}: {kind}: {line.strip()[:60]}")
    assert found == [], "write Markdown that GitHub renders (see docs/contributing.md)"


def test_the_myst_markup_check_sees_each_kind(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "see {doc}`api` and `{doc}` in code\n:::{note}\nx\n:::\nterm\n: definition\n(anchor)=\n% a comment\n"
        "```{eval-rst}\n.. x::\n```\n```python\n: not prose\n```\n"
    )
    kinds = [
        kind
        for number, line in prose_lines(page)
        for kind, pattern in MYST_ONLY.items()
        if (match := pattern.search(line)) and _outside_inline_code(line, match.start())
    ]
    assert kinds == ["role", "colon fence", "colon fence", "definition list", "target", "comment", "directive fence"]


def test_the_api_reference_tables_are_written_from_the_docstrings() -> None:
    result = subprocess.run(
        [sys.executable, str(DOCS / "api_summary.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = (DOCS / "api.md").read_text()
    assert "{eval-rst}" not in text
    assert text.count("<!-- autodoc") == text.count("<!-- api-summary -->") >= 10


@pytest.mark.parametrize("path", pages(), ids=lambda path: path.name)
def test_relative_links_to_files_resolve(path: Path) -> None:
    """Links to the repository's files (the report schema, say) work on GitHub and become downloads in the site."""
    targets = re.findall(r"\]\((\.\./[^)#\s]+)\)", path.read_text())
    assert [target for target in targets if not (path.parent / target).exists()] == []


def test_the_example_project_keeps_the_overviews_order() -> None:
    source = (ROOT / "example_project" / "example_project" / "settings.py").read_text()
    (assign,) = [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "MIDDLEWARE" for t in node.targets)
    ]
    assert isinstance(assign.value, ast.List)
    entries = [element.value for element in assign.value.elts if isinstance(element, ast.Constant)]
    assert [entry for entry in entries if str(entry).startswith("django_prodkit.")] == middleware_order()
