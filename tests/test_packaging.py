"""Build the wheel the way a user's pip would and look inside it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import django_prodkit

# Builds a project or a wheel in a subprocess: run where the server tests run (tox's corner environments).
pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("django_prodkit-*.whl")
    return built


def test_wheel_contains_the_package_and_nothing_else(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"django_prodkit", f"django_prodkit-{django_prodkit.__version__}.dist-info"}
    assert "django_prodkit/py.typed" in names
    assert "django_prodkit/middleware.py" in names
    assert not [n for n in names if n.startswith(("tests/", "example_project/", "docs/", "benchmarks/"))]


def test_wheel_metadata_has_only_the_promised_runtime_dependencies(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        metadata_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    assert metadata["Name"] == "django-prodkit"
    assert metadata["Version"] == django_prodkit.__version__
    assert metadata["Requires-Python"] == ">=3.10"
    requires = metadata.get_all("Requires-Dist") or []
    core = sorted(r.split(">")[0].split("=")[0].strip().lower() for r in requires if "extra ==" not in r)
    assert core == ["django", "prometheus-client", "structlog"]
    assert set(metadata.get_all("Provides-Extra") or []) >= {"aws", "xray"}
