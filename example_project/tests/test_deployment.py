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
    """Every ``.tf`` file merged: resources by type and name, modules, variables, locals, outputs, moves."""

    def __init__(self, directory: Path) -> None:
        self.resources: dict[tuple[str, str], dict[str, Any]] = {}
        self.modules: dict[str, dict[str, Any]] = {}
        self.variables: dict[str, dict[str, Any]] = {}
        self.locals: dict[str, Any] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.moved: list[dict[str, str]] = []
        self.files = sorted(directory.glob("*.tf"))
        for path in self.files:
            parsed = load_tf(path)
            for block in parsed.get("resource", []):
                for kind, named in block.items():
                    for name, body in named.items():
                        self.resources[(kind.strip('"'), name.strip('"'))] = body
            for block in parsed.get("module", []):
                self.modules.update(block)
            self.moved.extend(parsed.get("moved", []))
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


@pytest.fixture(scope="module")
def express() -> Terraform:
    """modules/express_service: one region's Express service, cluster, log group and alarms."""
    return Terraform(TERRAFORM / "modules" / "express_service")


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """A nested block; the parser gives a list of one dict per block."""
    value = body[name]
    return value[0] if isinstance(value, list) else value


def test_every_tf_file_parses(tf: Terraform) -> None:
    names = {path.name for path in tf.files}
    assert {"apprunner.tf", "ecs_express.tf", "platform.tf", "cloudfront.tf", "alarms.tf", "dashboard.tf"} <= names
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
    assert "aws_apprunner_auto_scaling_configuration_version.app[0].arn" in service["auto_scaling_configuration_arn"]


def test_service_health_check_and_port(tf: Terraform) -> None:
    service = tf.resource("aws_apprunner_service", "app")
    health = block(service, "health_check_configuration")
    assert tf.value(health["path"]) == HEALTH_PATH
    assert health["protocol"] == "HTTP"
    image = block(block(block(service, "source_configuration"), "image_repository"), "image_configuration")
    assert image["port"] == "${tostring(local.container_port)}"
    assert tf.value("${local.container_port}") == 8080
    secrets = tf.value(image["runtime_environment_secrets"])
    assert set(secrets) == {"DJANGO_SECRET_KEY", "DATABASE_URL", "PRODKIT_METRICS_TOKENS"}
    assert {"ENABLE_XRAY", "ENABLE_CLOUDWATCH_METRICS"} <= set(tf.value(image["runtime_environment_variables"]))


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


def platform_count(tf: Terraform, kind: str, name: str) -> str:
    """Which platform a resource exists for, from its ``count``."""
    count = tf.resource(kind, name).get("count")
    return {"${local.apprunner ? 1 : 0}": "apprunner", "${local.express ? 1 : 0}": "ecs_express"}.get(count, "both")


def test_a_variable_selects_ecs_express_mode_or_app_runner(tf: Terraform) -> None:
    platform = tf.variables["platform"]
    assert platform["default"] == "ecs_express"  # App Runner takes no new customers since 2026-04-30
    assert 'contains(["ecs_express", "apprunner"], var.platform)' in platform["validation"][0]["condition"]
    assert tf.locals["apprunner"] == '${var.platform == "apprunner"}'
    assert tf.locals["express"] == '${var.platform == "ecs_express"}'
    for kind, name in tf.resources:
        if kind.startswith("aws_apprunner_"):
            assert platform_count(tf, kind, name) == "apprunner", (kind, name)
        if kind.startswith("aws_ecs_") or name in ("execution", "infrastructure", "execution_secrets"):
            assert platform_count(tf, kind, name) == "ecs_express", (kind, name)
    # Shared by both: the image repository, CloudFront, the alarm topic, the application's own role.
    for kind, name in [
        ("aws_ecr_repository", "app"), ("aws_cloudfront_distribution", "app"), ("aws_sns_topic", "alarms"),
        ("aws_iam_role", "instance"),
    ]:  # fmt: skip
        assert platform_count(tf, kind, name) == "both"
    required = {name: body["version"] for block_ in load_tf(TERRAFORM / "versions.tf")["terraform"]
                for providers in block_["required_providers"] for name, body in providers.items()}  # fmt: skip
    # Not 6.23 (the first with the resource): its schema had blocks where these files write attribute lists.
    assert required["aws"] == ">= 6.60, < 7.0"


def setting(tf: Terraform, express: Terraform, module_value: str) -> Any:
    """A module value ``${var.settings.x}`` resolved through the root's ``local.express_service``."""
    match = re.fullmatch(r"\$\{var\.settings\.(\w+)\}", module_value)
    assert match, module_value
    assert match.group(1) in express.variables["settings"]["type"]
    return tf.value(tf.locals["express_service"][match.group(1)])


def test_ecs_express_service_has_app_runners_scaling_health_check_and_environment(
    tf: Terraform, express: Terraform
) -> None:
    service = express.resource("aws_ecs_express_gateway_service", "app")
    (scaling,) = service["scaling_target"]
    assert (setting(tf, express, scaling["min_task_count"]), setting(tf, express, scaling["max_task_count"])) == (1, 10)
    assert scaling["auto_scaling_metric"] in ("AVERAGE_CPU", "AVERAGE_MEMORY", "REQUEST_COUNT_PER_TARGET")
    assert 0 < setting(tf, express, scaling["auto_scaling_target_value"]) <= 100
    assert setting(tf, express, service["health_check_path"]) == HEALTH_PATH
    assert service["wait_for_steady_state"] is True
    (container,) = service["primary_container"]
    assert setting(tf, express, container["container_port"]) == 8080
    assert container["image"] == "${var.image}"
    assert tf.modules["express"]["image"] == "${aws_ecr_repository.app.repository_url}:${var.image_tag}"
    dynamic = {name: body for entry in container["dynamic"] for name, body in entry.items()}
    # The same maps App Runner's service is given, so both platforms run the container alike.
    assert dynamic["environment"]["for_each"] == "${var.settings.environment}"
    assert tf.locals["express_service"]["environment"] == "${local.app_environment}"
    assert dynamic["secret"]["for_each"] == "${var.secrets}"
    assert tf.modules["express"]["secrets"] == "${local.app_secrets}"
    assert dynamic["secret"]["content"] == [{"name": "${secret.key}", "value_from": "${secret.value}"}]
    apprunner = tf.resource("aws_apprunner_service", "app")
    image = block(block(block(apprunner, "source_configuration"), "image_repository"), "image_configuration")
    assert image["runtime_environment_variables"] == "${local.app_environment}"
    assert image["runtime_environment_secrets"] == "${local.app_secrets}"
    environment = tf.locals["app_environment"]
    assert environment["DJANGO_BEHIND_TLS_PROXY"] == "true"
    assert "local.platform_hosts" in environment["DJANGO_ALLOWED_HOSTS"]
    assert tf.locals["platform_hosts"] == '${local.apprunner ? ".awsapprunner.com" : ".on.aws"}'
    assert "local.apprunner" in environment["ENABLE_XRAY"]  # no X-Ray daemon beside an Express task
    assert service["lifecycle"][0]["ignore_changes"] == ["${primary_container[0].image}"]
    assert tf.locals["express_service"]["task_role_arn"] == "${aws_iam_role.instance.arn}"
    assert tf.modules["express"]["count"] == "${local.express ? 1 : 0}"


def test_the_module_took_over_the_express_resources_without_replacing_them(tf: Terraform, express: Terraform) -> None:
    """Destroying and re-creating the service under its name fails (provider issue #47438): moved blocks instead."""
    moves = {move["from"]: move["to"] for move in tf.moved}
    for old, new in [
        ("aws_ecs_cluster.app", "aws_ecs_cluster.app"),
        ("aws_cloudwatch_log_group.app", "aws_cloudwatch_log_group.app"),
        ("aws_ecs_express_gateway_service.app", "aws_ecs_express_gateway_service.app"),
        ("aws_cloudwatch_metric_alarm.express_error_rate", "aws_cloudwatch_metric_alarm.error_rate"),
        ("aws_cloudwatch_metric_alarm.express_latency", "aws_cloudwatch_metric_alarm.latency"),
        ("aws_cloudwatch_metric_alarm.express_server_errors", "aws_cloudwatch_metric_alarm.server_errors"),
    ]:
        assert moves.pop(f"${{{old}[0]}}") == f"${{module.express[0].{new}}}"
        kind, name = new.split(".")
        assert (kind, name) in express.resources
    assert moves == {}


def test_ecs_express_roles_use_the_managed_policies(tf: Terraform) -> None:
    infrastructure = tf.resource("aws_iam_role_policy_attachment", "infrastructure")
    assert infrastructure["policy_arn"].endswith(
        ":policy/service-role/AmazonECSInfrastructureRoleforExpressGatewayServices"
    )
    execution = tf.resource("aws_iam_role_policy_attachment", "execution")
    assert execution["policy_arn"].endswith(":policy/service-role/AmazonECSTaskExecutionRolePolicy")
    assert "ecs.amazonaws.com" in str(tf.resource("aws_iam_role", "infrastructure")["assume_role_policy"])
    assert "ecs-tasks.amazonaws.com" in str(tf.resource("aws_iam_role", "execution")["assume_role_policy"])
    # The application's role is App Runner's instance role or the task role, by platform.
    assert "ecs-tasks.amazonaws.com" in str(tf.resource("aws_iam_role", "instance")["assume_role_policy"])
    statements = tf.locals["deploy_statements"]
    assert set(statements) == {"apprunner", "ecs_express"}
    express_actions = {action for statement in statements["ecs_express"] for action in statement["Action"]}
    assert {"ecs:UpdateExpressGatewayService", "ecs:DescribeExpressGatewayService"} <= express_actions
    # What wait_for_deployment.py calls, on the service and on its deployments.
    assert {"ecs:ListServiceDeployments", "ecs:DescribeServiceDeployments"} <= express_actions
    (describe,) = [st for st in statements["ecs_express"] if st["Action"] == ["ecs:DescribeServiceDeployments"]]
    assert ":service-deployment/${var.service_name}/${var.service_name}/*" in describe["Resource"]


def test_cloudfront_fronts_the_selected_service(tf: Terraform, express: Terraform) -> None:
    origin = block(tf.resource("aws_cloudfront_distribution", "app"), "origin")
    assert origin["domain_name"] == "${local.origin_domain}"
    domain = tf.locals["origin_domain"]
    assert "aws_apprunner_service.app[*].service_url" in domain
    assert "local.two_regions ? var.failover_domain_name : one(module.express[*].endpoint_host)" in domain
    endpoint = express.outputs["endpoint_host"]["value"]
    assert 'trimprefix(aws_ecs_express_gateway_service.app.ingress_paths[0].endpoint, "https://")' in endpoint


def test_ecs_express_alarms_watch_django_prodkits_own_metrics(tf: Terraform, express: Terraform) -> None:
    from django_prodkit.cloudwatch.aggregator import STATUS_CLASSES
    from django_prodkit.cloudwatch.config import SERVICE_DIMENSION
    from django_prodkit.cloudwatch.emf import REQUEST_COUNT, RESPONSE_TIME

    server_errors = "Status" + STATUS_CLASSES[-1]
    rate = alarm(express, "error_rate")
    queries = {q["id"]: q for q in rate["metric_query"]}
    assert block(queries["errors"], "metric")["metric_name"] == server_errors
    assert block(queries["requests"], "metric")["metric_name"] == REQUEST_COUNT
    assert setting(tf, express, rate["threshold"]) == 1
    assert alarm(express, "latency")["metric_name"] == RESPONSE_TIME
    assert setting(tf, express, alarm(express, "latency")["threshold"]) == 500
    assert alarm(express, "server_errors")["metric_name"] == server_errors
    assert setting(tf, express, alarm(express, "server_errors")["threshold"]) == 10
    for name in ("error_rate", "latency", "server_errors"):
        assert alarm(express, name)["alarm_actions"] == ["${var.alarm_topic_arn}"]
        queries = alarm(express, name).get("metric_query", [])
        dimensions = [block(q, "metric")["dimensions"] for q in queries if "metric" in q]
        assert set(dimensions or [alarm(express, name)["dimensions"]]) == {"${var.settings.metric_dimensions}"}
    assert tf.locals["express_service"]["metric_dimensions"] == "${local.prodkit_dimensions}"
    # The service and the extra dimensions the container is given: the alarms follow the configuration.
    assert tf.locals["prodkit_dimensions"] == (
        f"${{merge({{{SERVICE_DIMENSION} = var.service_name}}, var.cloudwatch_dimensions)}}"
    )
    assert "var.cloudwatch_dimensions" in tf.locals["app_environment"]["CLOUDWATCH_DIMENSIONS"]
    for name in ("error_rate", "latency", "server_errors"):
        assert platform_count(tf, "aws_cloudwatch_metric_alarm", name) == "apprunner"


def test_terraform_fmt_accepts_the_files() -> None:
    from tests.tools import require_tool

    terraform = require_tool("terraform")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", "-no-color"], cwd=TERRAFORM, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


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
    assert job["if"] == "vars.DEPLOY_PLATFORM != 'ecs_express'"
    assert job["permissions"]["id-token"] == "write"
    assert deploy["permissions"] == {"contents": "read"}
    steps = " ".join(str(step) for step in job["steps"])
    assert "role-to-assume" in steps
    assert "aws-access-key-id" not in steps
    assert "amazon-ecr-login" in steps
    assert "build-push-action" in steps
    assert "apprunner update-service" in steps
    assert HEALTH_PATH in steps


def test_deploy_to_ecs_express_mode_when_terraform_chose_it(tf: Terraform) -> None:
    deploy = workflow("deploy-example.yml")
    job = deploy["jobs"]["deploy-ecs-express"]
    assert job["needs"] == "test"
    # Exactly one deploy job runs: the variable is terraform's output "platform".
    assert job["if"] == "vars.DEPLOY_PLATFORM == 'ecs_express'"
    assert tf.outputs["platform"]["value"] == "${var.platform}"
    assert job["environment"] == "production"  # the OIDC role trusts only this environment
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    steps = " ".join(str(step) for step in job["steps"])
    assert "role-to-assume" in steps
    assert "aws-access-key-id" not in steps
    assert "build-push-action" in steps
    # services-stable is green after an automatic rollback; the deployment itself must end SUCCESSFUL.
    assert "services-stable" not in steps
    assert 'wait_for_deployment.py --service-arn "$SERVICE_ARN" --image "$IMAGE"' in steps
    # The second region, when there is one: the same script on ECR's replica of the image.
    (second,) = [step for step in job["steps"] if step.get("if") == "vars.SECONDARY_REGION != ''"]
    assert second["env"]["AWS_REGION"] == "${{ vars.SECONDARY_REGION }}"
    assert '--region "$AWS_REGION"' in second["run"]
    assert "aws ecr describe-images" in second["run"]
    assert tf.outputs["secondary_service_arn"]["value"] == "${one(module.express_secondary[*].service_arn)}"
    wait_timeout = job["timeout-minutes"]
    from deploy.wait_for_deployment import BAKE_MARGIN, DEFAULT_TIMEOUT

    assert wait_timeout * 60 > DEFAULT_TIMEOUT + BAKE_MARGIN
    assert HEALTH_PATH in steps
    assert "vars.ECS_EXPRESS_SERVICE_ARN" in steps


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


# --- Two regions ------------------------------------------------------------------------------------------------------


def test_a_second_region_is_one_variable_away(tf: Terraform) -> None:
    """The plan's intent with secondary_region set: two services, the failover pair, readiness health checks."""
    assert tf.variables["secondary_region"]["default"] == ""  # one region unless asked
    assert tf.locals["two_regions"] == '${local.express && var.secondary_region != ""}'
    primary, secondary = tf.modules["express"], tf.modules["express_secondary"]
    assert primary["source"] == secondary["source"] == "./modules/express_service"
    assert secondary["count"] == "${local.two_regions ? 1 : 0}"
    assert secondary["providers"] == {"aws": "${aws.secondary}"}
    assert primary["settings"] == secondary["settings"] == "${local.express_service}"  # the same service twice
    # Region-bound values: the replicated image, the replicated secrets, an alarm topic in that region.
    assert secondary["image"] == "${local.secondary_image}"
    assert "amazonaws.com/${var.service_name}:${var.image_tag}" in tf.locals["secondary_image"]
    assert "ecr.${var.secondary_region}." in tf.locals["secondary_image"]
    assert ":${var.secondary_region}:" in tf.locals["secondary_secrets"]
    assert secondary["alarm_topic_arn"] == "${aws_sns_topic.alarms_secondary[0].arn}"
    replication = tf.resource("aws_ecr_replication_configuration", "secondary")
    rule = block(block(replication, "replication_configuration"), "rule")
    assert block(rule, "destination")["region"] == "${var.secondary_region}"

    # The failover pair: PRIMARY is the first region's endpoint, SECONDARY the second's, each with a health check.
    targets = tf.locals["failover_targets"]
    assert "PRIMARY = one(module.express[*].endpoint_host)" in targets
    assert "SECONDARY = one(module.express_secondary[*].endpoint_host)" in targets
    record = tf.resource("aws_route53_record", "failover")
    assert record["for_each"] == "${local.failover_targets}"
    assert record["name"] == "${var.failover_domain_name}"
    assert block(record, "failover_routing_policy")["type"] == "${each.key}"
    assert record["health_check_id"] == "${aws_route53_health_check.region[each.key].id}"
    check = tf.resource("aws_route53_health_check", "region")
    assert check["for_each"] == "${local.failover_targets}"
    assert (check["type"], check["port"], check["enable_sni"]) == ("HTTPS", 443, True)
    assert check["fqdn"] == "${each.value}"  # each region probed directly, not through CloudFront

    from django.urls import reverse

    assert tf.value(check["resource_path"]) == reverse("prodkit:readiness")
    # CloudFront's origin is the failover name, whose certificate exists in both regions.
    assert "var.failover_domain_name" in tf.locals["origin_domain"]
    for name in ("failover", "failover_secondary"):
        assert tf.resource("aws_acm_certificate", name)["domain_name"] == "${var.failover_domain_name}"
    assert tf.resource("aws_acm_certificate", "failover_secondary")["provider"] == "${aws.secondary}"


def test_cloudwatch_dimensions_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.exceptions import ImproperlyConfigured

    from example_project.settings import env_dimensions

    monkeypatch.setenv("CLOUDWATCH_DIMENSIONS", "Environment=production, Team = blog")
    assert env_dimensions("CLOUDWATCH_DIMENSIONS") == {"Environment": "production", "Team": "blog"}
    monkeypatch.setenv("CLOUDWATCH_DIMENSIONS", "")
    assert env_dimensions("CLOUDWATCH_DIMENSIONS") == {}
    for bad in ("production", "=x", "Team="):
        monkeypatch.setenv("CLOUDWATCH_DIMENSIONS", bad)
        with pytest.raises(ImproperlyConfigured, match=f"CLOUDWATCH_DIMENSIONS: '{re.escape(bad)}' is not Name=value"):
            env_dimensions("CLOUDWATCH_DIMENSIONS")
