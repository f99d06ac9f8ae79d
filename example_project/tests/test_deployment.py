"""The deployment files, checked without an AWS account: App Runner schema, Terraform values, workflows, image."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import hcl2
import jsonschema
import pytest
import yaml

from tests.apprunner_schema import SCHEMA

EXAMPLE = Path(__file__).resolve().parent.parent
REPO = EXAMPLE.parent
TERRAFORM = EXAMPLE / "terraform"
WORKFLOWS = REPO / ".github" / "workflows"
HEALTH_PATH = "/api/v1/healthcheck/"


# --- apprunner.yaml ---------------------------------------------------------------------------------------------


def apprunner() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLE / "apprunner.yaml").read_text())


def test_apprunner_yaml_matches_the_configuration_file_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(apprunner(), SCHEMA)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda c: c.pop("runtime"),
        lambda c: c.update(runtime="python3.11"),
        lambda c: c["build"]["commands"].pop("build"),
        lambda c: c["run"].update(port=8080),
        lambda c: c["run"]["network"].update(port="8080"),
        lambda c: c["run"]["env"].append({"name": "X"}),
        lambda c: c["run"]["secrets"].append({"name": "X", "value-from": "plain text"}),
        lambda c: c.update(runtime="python3"),  # pre-run needs a revised-build runtime
    ],
)
def test_the_schema_rejects_broken_files(breakage: Any) -> None:
    config = copy.deepcopy(apprunner())
    breakage(config)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, SCHEMA)


def test_apprunner_yaml_runs_python311_on_8080_and_says_what_it_cannot_do() -> None:
    config = apprunner()
    assert config["runtime"] == "python311"
    assert config["run"]["network"]["port"] == 8080
    assert config["run"]["command"] == "sh start.sh"
    text = (EXAMPLE / "apprunner.yaml").read_text()
    assert "ignores it" in text  # image-based services
    assert "Auto scaling cannot be configured here" in text
    requirements = (EXAMPLE / "requirements.txt").read_text()
    assert re.search(r"^Django==5\.2\.\d+$", requirements, re.MULTILINE)
    secret_names = {s["name"] for s in config["run"]["secrets"]}
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "PRODKIT_METRICS_TOKENS"} <= secret_names


# --- Terraform ----------------------------------------------------------------------------------------------------


def load_tf(path: Path) -> dict[str, Any]:
    options = hcl2.SerializationOptions(strip_string_quotes=True, with_comments=False, explicit_blocks=False)
    with path.open() as handle:
        return hcl2.load(handle, serialization_options=options)


class Terraform:
    """Every ``.tf`` file merged: resources by type and name, variables, locals, outputs."""

    def __init__(self, directory: Path) -> None:
        self.resources: dict[tuple[str, str], dict[str, Any]] = {}
        self.variables: dict[str, dict[str, Any]] = {}
        self.locals: dict[str, Any] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.files = sorted(directory.glob("*.tf"))
        for path in self.files:
            parsed = load_tf(path)
            for block in parsed.get("resource", []):
                for kind, named in block.items():
                    for name, body in named.items():
                        self.resources[(kind.strip('"'), name.strip('"'))] = body
            for block in parsed.get("variable", []):
                for name, body in block.items():
                    self.variables[name.strip('"')] = body
            for block in parsed.get("locals", []):
                self.locals.update(block)
            for block in parsed.get("output", []):
                for name, body in block.items():
                    self.outputs[name.strip('"')] = body

    def resource(self, kind: str, name: str) -> dict[str, Any]:
        return self.resources[(kind, name)]

    def value(self, raw: Any) -> Any:
        """Resolve a literal, ``${var.x}`` (its default) or ``${local.x}``."""
        if isinstance(raw, str):
            match = re.fullmatch(r"\$\{(var|local)\.(\w+)\}", raw)
            if match:
                kind, name = match.groups()
                return self.value(self.variables[name]["default"] if kind == "var" else self.locals[name])
            if re.fullmatch(r"-?\d+", raw):
                return int(raw)
        return raw


@pytest.fixture(scope="module")
def tf() -> Terraform:
    return Terraform(TERRAFORM)


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """A nested block; the parser gives a list of one dict per block."""
    value = body[name]
    return value[0] if isinstance(value, list) else value


def test_every_tf_file_parses(tf: Terraform) -> None:
    names = {path.name for path in tf.files}
    assert {"apprunner.tf", "cloudfront.tf", "alarms.tf", "dashboard.tf", "variables.tf", "outputs.tf"} <= names
    assert len(tf.resources) >= 15


def test_every_variable_and_output_is_described(tf: Terraform) -> None:
    assert tf.variables
    assert [name for name, body in tf.variables.items() if not body.get("description")] == []
    assert [name for name, body in tf.outputs.items() if not body.get("description")] == []


def test_auto_scaling_1_to_10_instances_at_100_concurrent_requests(tf: Terraform) -> None:
    scaling = tf.resource("aws_apprunner_auto_scaling_configuration_version", "app")
    assert tf.value(scaling["min_size"]) == 1
    assert tf.value(scaling["max_size"]) == 10
    assert tf.value(scaling["max_concurrency"]) == 100
    service = tf.resource("aws_apprunner_service", "app")
    assert "aws_apprunner_auto_scaling_configuration_version.app.arn" in service["auto_scaling_configuration_arn"]


def test_service_health_check_and_port(tf: Terraform) -> None:
    service = tf.resource("aws_apprunner_service", "app")
    health = block(service, "health_check_configuration")
    assert health["path"] == HEALTH_PATH
    assert health["protocol"] == "HTTP"
    image = block(block(block(service, "source_configuration"), "image_repository"), "image_configuration")
    assert image["port"] == "8080"
    assert set(image["runtime_environment_secrets"]) == {"DJANGO_SECRET_KEY", "DATABASE_URL", "PRODKIT_METRICS_TOKENS"}
    assert {"ENABLE_XRAY", "ENABLE_CLOUDWATCH_METRICS"} <= set(image["runtime_environment_variables"])


def test_cloudfront_https_only_compressed_static_for_a_year_api_for_60s(tf: Terraform) -> None:
    distribution = tf.resource("aws_cloudfront_distribution", "app")
    default = block(distribution, "default_cache_behavior")
    static = block(distribution, "ordered_cache_behavior")
    assert default["viewer_protocol_policy"] == "https-only"
    assert static["viewer_protocol_policy"] == "https-only"
    assert default["compress"] is True
    assert static["compress"] is True
    assert static["path_pattern"] == "/static/*"
    origin = block(block(distribution, "origin"), "custom_origin_config")
    assert origin["origin_protocol_policy"] == "https-only"

    static_policy = tf.resource("aws_cloudfront_cache_policy", "static")
    assert "aws_cloudfront_cache_policy.static.id" in static["cache_policy_id"]
    assert {tf.value(static_policy[k]) for k in ("min_ttl", "default_ttl", "max_ttl")} == {365 * 24 * 3600}

    api_policy = tf.resource("aws_cloudfront_cache_policy", "api")
    assert "aws_cloudfront_cache_policy.api.id" in default["cache_policy_id"]
    # Honouring origin headers: no floor, nothing cached without a Cache-Control, at most 60 s.
    assert tf.value(api_policy["min_ttl"]) == 0
    assert tf.value(api_policy["default_ttl"]) == 0
    assert tf.value(api_policy["max_ttl"]) == 60
    headers = block(block(api_policy, "parameters_in_cache_key_and_forwarded_to_origin"), "headers_config")
    assert block(headers, "headers")["items"] == ["Authorization"]


def alarm(tf: Terraform, name: str) -> dict[str, Any]:
    return tf.resource("aws_cloudwatch_metric_alarm", name)


def test_alarm_error_rate_over_one_percent(tf: Terraform) -> None:
    rate = alarm(tf, "error_rate")
    assert tf.value(rate["threshold"]) == 1
    assert rate["comparison_operator"] == "GreaterThanThreshold"
    queries = {q["id"]: q for q in rate["metric_query"]}
    assert "100 * errors / requests" in queries["error_rate"]["expression"]
    assert block(queries["errors"], "metric")["metric_name"] == "5xxStatusResponses"
    assert block(queries["requests"], "metric")["metric_name"] == "Requests"


def test_alarm_response_time_over_500ms(tf: Terraform) -> None:
    latency = alarm(tf, "latency")
    assert latency["metric_name"] == "RequestLatency"
    assert tf.value(latency["threshold"]) == 500
    assert latency["comparison_operator"] == "GreaterThanThreshold"


def test_alarm_more_than_10_server_errors_a_minute(tf: Terraform) -> None:
    errors = alarm(tf, "server_errors")
    assert errors["metric_name"] == "5xxStatusResponses"
    assert errors["statistic"] == "Sum"
    assert tf.value(errors["period"]) == 60
    assert tf.value(errors["threshold"]) == 10


def test_dashboard_shows_the_service_and_the_alarms(tf: Terraform) -> None:
    body = tf.resource("aws_cloudwatch_dashboard", "app")["dashboard_body"]
    for needle in ("RequestLatency", "5xxStatusResponses", "ActiveInstances", "CacheHitRate", "alarm"):
        assert needle in str(body)


# --- Workflows -------------------------------------------------------------------------------------------------------


def workflow(name: str) -> dict[Any, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_actionlint_accepts_the_workflows() -> None:
    from tests.tools import require_tool

    actionlint = require_tool("actionlint")
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) >= 2
    result = subprocess.run(
        [actionlint, "-no-color", *files], capture_output=True, text=True, timeout=120, check=False, cwd=REPO
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    from tests.tools import require_tool

    actionlint = require_tool("actionlint")
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ matrix.nope }}\n"
    )
    result = subprocess.run(
        [actionlint, "-no-color", str(broken)], capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path
    )
    assert result.returncode == 1
    assert "matrix" in result.stdout


def test_every_action_is_pinned_to_a_commit_sha() -> None:
    uses = re.findall(r"uses:\s*(\S+)", "".join(p.read_text() for p in WORKFLOWS.glob("*.yml")))
    assert uses
    unpinned = [u for u in uses if not re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", u)]
    assert unpinned == []


def test_ci_runs_the_whole_tox_matrix() -> None:
    import configparser

    tox = configparser.ConfigParser()
    tox.read(REPO / "tox.ini")
    ci = workflow("ci.yml")
    envs = {item["env"] for item in ci["jobs"]["tests"]["strategy"]["matrix"]["include"]}
    envs |= set(ci["jobs"]["checks"]["strategy"]["matrix"]["env"])
    expected = {"lint", "docs", "packaging", "example"}
    expected |= {f"py3{m}-django52" for m in (10, 11, 12, 13)}
    expected |= {f"py3{m}-django{d}" for m in (12, 13) for d in (60, 61)}
    assert expected <= envs
    assert "example" in tox["tox"]["env_list"]


def test_deploy_uses_oidc_tests_first_and_pushes_to_ecr_then_app_runner() -> None:
    deploy = workflow("deploy-example.yml")
    job = deploy["jobs"]["deploy"]
    assert job["needs"] == "test"
    assert job["permissions"]["id-token"] == "write"
    assert deploy["permissions"] == {"contents": "read"}
    steps = " ".join(str(step) for step in job["steps"])
    assert "role-to-assume" in steps
    assert "aws-access-key-id" not in steps
    assert "amazon-ecr-login" in steps
    assert "build-push-action" in steps
    assert "apprunner update-service" in steps
    assert HEALTH_PATH in steps


# --- Image and server -------------------------------------------------------------------------------------------------


def healthcheck_command() -> str:
    """The shell command of the Dockerfile's HEALTHCHECK (its continuation lines joined)."""
    text = (EXAMPLE / "Dockerfile").read_text().replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK (?:--\S+ )*\s*CMD (.+)$", text, re.MULTILINE)
    assert match, "no shell-form HEALTHCHECK in the Dockerfile"
    return " ".join(match.group(1).split())


def test_dockerfile_slim_non_root_healthcheck_port_8080() -> None:
    text = (EXAMPLE / "Dockerfile").read_text()
    assert re.search(r"^FROM python:\$\{PYTHON_VERSION\}-slim$", text, re.MULTILINE)
    assert "ARG PYTHON_VERSION=3.11" in text
    user = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert user
    assert user[-1] not in ("root", "0")
    assert "EXPOSE 8080" in text
    assert healthcheck_command().startswith("python manage.py healthcheck --live --url ")
    assert 'CMD ["./start.sh"]' in text
    assert "gunicorn --config gunicorn.conf.py" in (EXAMPLE / "start.sh").read_text()


def test_dockerfile_builds_when_docker_is_available() -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True, check=False).returncode != 0:
        pytest.skip("no docker daemon here; CI's deploy workflow builds the image")
    result = subprocess.run(
        [docker, "build", "-f", "example_project/Dockerfile", "-t", "prodkit-example-test", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_gunicorn_conf_is_valid_for_gunicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy

    from gunicorn.config import Config

    monkeypatch.setenv("GUNICORN_WORKERS", "4")
    monkeypatch.setenv("PORT", "9000")
    namespace = runpy.run_path(str(EXAMPLE / "gunicorn.conf.py"))
    config = Config()
    for key, value in namespace.items():
        if key in config.settings:
            config.set(key, value)
    assert config.workers == 4
    assert config.bind == ["0.0.0.0:9000"]
    assert config.max_requests > 0
    for hook in ("on_starting", "child_exit", "worker_exit", "on_exit"):
        assert callable(namespace[hook])
    assert config.settings["child_exit"].get() is namespace["child_exit"]


def test_start_sh_migrates_then_serves_and_the_healthcheck_command_passes(tmp_path: Path) -> None:
    """The container's entry point and HEALTHCHECK, run here as they run in the image."""
    import demo

    bin_dir = str(Path(sys.executable).parent)
    env = demo.server_environment(tmp_path, "token")
    port = demo.free_port()
    env.update(
        PATH=f"{bin_dir}:{env.get('PATH', '')}",
        PYTHONPATH=":".join(p for p in sys.path if p),
        HOST="127.0.0.1",
        PORT=str(port),
        GUNICORN_WORKERS="1",
        DJANGO_MIGRATE_ON_START="true",
    )
    log_path = tmp_path / "start.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(["sh", "start.sh"], cwd=EXAMPLE, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = demo.Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        demo.wait_until_healthy(server)
        # Migrated by start.sh: the post list needs the tables.
        assert demo.get(server.url + "/api/v1/posts/")[0] == 200
        # As Docker runs it: /bin/sh -c in the image's WORKDIR, with the image's environment.
        command = healthcheck_command()
        probe = subprocess.run(
            ["sh", "-c", command], cwd=EXAMPLE, env=env, timeout=30, capture_output=True, text=True, check=False
        )
        assert probe.returncode == 0, probe.stdout + probe.stderr
        assert probe.stdout.startswith(f"ok: {server.url}{HEALTH_PATH} answered 200")
        stopped = subprocess.run(
            ["sh", "-c", command], cwd=EXAMPLE, env={**env, "PORT": str(demo.free_port())}, timeout=30,
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert stopped.returncode == 1
        assert stopped.stdout.startswith("fail: ")
    finally:
        demo.stop_server(server)
    assert process.returncode == 0, server.output()[-3000:]


def test_start_sh_rejects_a_bad_boolean() -> None:
    env = {**os.environ, "DJANGO_MIGRATE_ON_START": "maybe"}
    result = subprocess.run(
        ["sh", "start.sh"], cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert "DJANGO_MIGRATE_ON_START=maybe is not a boolean" in result.stderr
