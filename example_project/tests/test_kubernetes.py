"""The Kubernetes base in k8s/: rendered by ``kubectl kustomize``, every object validated, and wired to the kit.

Built-in kinds are validated with kubernetes-validate's strict schemas (unknown fields are errors); the
ServiceMonitor against the Prometheus Operator's own CRD schema (tests/crds/), made strict the same way.
"""

from __future__ import annotations

import copy
import re
import runpy
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from django.urls import reverse

from django_prodkit.metrics.store import REQUESTS_METRIC
from tests.tools import require_tool

EXAMPLE = Path(__file__).resolve().parent.parent
BASE = EXAMPLE / "k8s"
CRDS = Path(__file__).resolve().parent / "crds"
#: The oldest Kubernetes the base is for (native preStop sleep is on by default from 1.30) and the newest schema.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    kubectl = require_tool("kubectl")
    result = subprocess.run([kubectl, "kustomize", str(BASE)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (match,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return match


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def strict(schema: Any) -> Any:
    """The schema with unknown properties rejected, as ``kubectl apply --validate=strict`` does for a CRD."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema.setdefault("additionalProperties", False)
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def crd_validator(kind: str) -> jsonschema.Validator:
    (crd,) = [d for d in yaml.safe_load_all(next(CRDS.glob("*.yaml")).read_text()) if d]
    assert crd["spec"]["names"]["kind"] == kind
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = strict(version["schema"]["openAPIV3Schema"])
    # metadata is the API server's to check; the CRD schema leaves it open.
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


def test_the_base_renders_every_object(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in rendered)
    assert kinds == [
        ("ConfigMap", kinds[0][1]),
        ("Deployment", "blog-api-web"),
        ("Deployment", "blog-api-worker"),
        ("HorizontalPodAutoscaler", "blog-api-web"),
        ("Namespace", "blog-api"),
        ("NetworkPolicy", "blog-api-web"),
        ("NetworkPolicy", "blog-api-worker"),
        ("PodDisruptionBudget", "blog-api-web"),
        ("PodDisruptionBudget", "blog-api-worker"),
        ("Service", "blog-api-web"),
        ("ServiceAccount", "blog-api"),
        ("ServiceMonitor", "blog-api-web"),
    ]
    assert kinds[0][1].startswith("blog-api-")  # the generated ConfigMap's hashed name
    assert {o["metadata"].get("namespace") for o in rendered if o["kind"] != "Namespace"} == {"blog-api"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_built_in_objects_pass_strict_validation(rendered: list[dict[str, Any]], version: str) -> None:
    for item in rendered:
        if item["apiVersion"].startswith("monitoring.coreos.com/"):
            continue
        kubernetes_validate.validate(item, version, strict=True)


def test_strict_validation_rejects_a_misspelt_field(rendered: list[dict[str, Any]]) -> None:
    broken = copy.deepcopy(find(rendered, "Deployment", "blog-api-web"))
    (web,) = broken["spec"]["template"]["spec"]["containers"]
    web["readinesProbe"] = web.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_service_monitor_matches_the_operators_crd(rendered: list[dict[str, Any]]) -> None:
    validator = crd_validator("ServiceMonitor")
    monitor = find(rendered, "ServiceMonitor", "blog-api-web")
    validator.validate(monitor)
    broken = copy.deepcopy(monitor)
    broken["spec"]["endpoints"][0]["bearerTokenSecrett"] = {"name": "x", "key": "y"}
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


def test_probes_are_the_kits_liveness_and_readiness_endpoints(rendered: list[dict[str, Any]]) -> None:
    web = container(find(rendered, "Deployment", "blog-api-web"))
    assert web["livenessProbe"]["httpGet"]["path"] == reverse("prodkit:healthcheck")
    assert web["startupProbe"]["httpGet"]["path"] == reverse("prodkit:healthcheck")
    assert web["readinessProbe"]["httpGet"]["path"] == reverse("prodkit:readiness")
    ports = {port["name"]: port["containerPort"] for port in web["ports"]}
    assert ports == {"http": 8080}
    assert {probe["httpGet"]["port"] for probe in (web["livenessProbe"], web["readinessProbe"])} == {"http"}
    # Longer than the readiness checks may take (HEALTH_CHECK_TIMEOUT, 1.5 s by default).
    from django_prodkit.conf import get_config

    assert web["readinessProbe"]["timeoutSeconds"] > get_config()["HEALTH_CHECK_TIMEOUT"]


def config_map(rendered: list[dict[str, Any]]) -> dict[str, str]:
    (found,) = [o for o in rendered if o["kind"] == "ConfigMap"]
    return dict(found["data"])


def test_grace_period_covers_the_pre_stop_pause_and_gunicorns_graceful_timeout(
    rendered: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in config_map(rendered).items():
        monkeypatch.setenv(name, value)
    from gunicorn.config import Config

    # gunicorn.conf.py under the ConfigMap's environment, loaded through gunicorn's own validators.
    namespace = runpy.run_path(str(EXAMPLE / "gunicorn.conf.py"))
    gunicorn = Config()
    for key, value in namespace.items():
        if key in gunicorn.settings:
            gunicorn.set(key, value)
    deployment = find(rendered, "Deployment", "blog-api-web")
    pod = deployment["spec"]["template"]["spec"]
    pause = container(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pause > 0
    assert gunicorn.graceful_timeout == 30
    assert pod["terminationGracePeriodSeconds"] > pause + gunicorn.graceful_timeout
    assert gunicorn.workers == int(config_map(rendered)["GUNICORN_WORKERS"])
    assert gunicorn.forwarded_allow_ips == ["10.0.0.0/8"]  # a network gunicorn accepts, not "*"


def test_secrets_come_from_the_secret_and_the_metrics_token_is_the_scrapers(rendered: list[dict[str, Any]]) -> None:
    web = container(find(rendered, "Deployment", "blog-api-web"))
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in web["env"] if "valueFrom" in e}
    assert set(refs) == {"DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "PRODKIT_METRICS_TOKENS"}
    assert not set(refs) & set(config_map(rendered))  # no secret in the ConfigMap
    monitor = find(rendered, "ServiceMonitor", "blog-api-web")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": refs["PRODKIT_METRICS_TOKENS"]}
    assert endpoint["path"] == reverse("prodkit:metrics")
    service = find(rendered, "Service", "blog-api-web")
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()


def pod_labels(rendered: list[dict[str, Any]], name: str) -> dict[str, str]:
    return dict(find(rendered, "Deployment", name)["spec"]["template"]["metadata"]["labels"])


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def test_service_and_budgets_select_their_own_pods(rendered: list[dict[str, Any]]) -> None:
    web, worker = pod_labels(rendered, "blog-api-web"), pod_labels(rendered, "blog-api-worker")
    service = find(rendered, "Service", "blog-api-web")["spec"]["selector"]
    assert selects(service, web)
    assert not selects(service, worker)
    web_budget = find(rendered, "PodDisruptionBudget", "blog-api-web")["spec"]
    assert selects(web_budget["selector"]["matchLabels"], web)
    assert not selects(web_budget["selector"]["matchLabels"], worker)
    hpa = find(rendered, "HorizontalPodAutoscaler", "blog-api-web")["spec"]
    assert web_budget["minAvailable"] < hpa["minReplicas"]  # a drain can always proceed
    worker_budget = find(rendered, "PodDisruptionBudget", "blog-api-worker")["spec"]
    assert selects(worker_budget["selector"]["matchLabels"], worker)


def adapter_rule() -> dict[str, Any]:
    (rule,) = yaml.safe_load((BASE / "prometheus-adapter-rules.yaml").read_text())
    return dict(rule)


def test_the_autoscaler_uses_cpu_and_the_kits_requests_through_the_adapter(rendered: list[dict[str, Any]]) -> None:
    hpa = find(rendered, "HorizontalPodAutoscaler", "blog-api-web")["spec"]
    assert hpa["scaleTargetRef"]["name"] == "blog-api-web"
    assert "replicas" not in find(rendered, "Deployment", "blog-api-web")["spec"]  # the HPA owns it
    metrics = {m["type"]: m for m in hpa["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    rule = adapter_rule()
    assert metrics["Pods"]["pods"]["metric"]["name"] == rule["name"]["as"]
    counter = f"{REQUESTS_METRIC}_total"
    assert re.fullmatch(rule["name"]["matches"], counter)
    assert rule["seriesQuery"].startswith(counter + "{")


def test_the_adapters_query_is_valid_promql(tmp_path: Path) -> None:
    """The metricsQuery as prometheus-adapter expands it for one pod, checked by promtool."""
    promtool = require_tool("promtool")
    query = adapter_rule()["metricsQuery"]
    expanded = (
        query.replace("<<.Series>>", f"{REQUESTS_METRIC}_total")
        .replace("<<.LabelMatchers>>", 'namespace="blog-api",pod=~"blog-api-web-.*"')
        .replace("<<.GroupBy>>", "pod")
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "adapter", "rules": [{"record": "x:y", "expr": expanded}]}]}))
    result = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    rules.write_text(rules.read_text().replace("[2m]", "[2q]"))
    assert subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, timeout=30).returncode == 1


def test_the_worker_runs_celery_with_a_warm_shutdown_window(rendered: list[dict[str, Any]]) -> None:
    deployment = find(rendered, "Deployment", "blog-api-worker")
    worker = container(deployment)
    assert worker["command"][:4] == ["celery", "-A", "example_project", "worker"]
    assert "inspect ping" in worker["livenessProbe"]["exec"]["command"][-1]
    assert "ports" not in worker
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60


def test_pods_run_unprivileged_with_a_read_only_root(rendered: list[dict[str, Any]]) -> None:
    for name in ("blog-api-web", "blog-api-worker"):
        pod = find(rendered, "Deployment", name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        security = container(find(rendered, "Deployment", name))["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"]["drop"] == ["ALL"]
        # PROMETHEUS_MULTIPROC_DIR is under /tmp, which must stay writable.
        mounts = {m["mountPath"] for m in container(find(rendered, "Deployment", name))["volumeMounts"]}
        assert "/tmp" in mounts


def test_network_policies_open_only_the_web_pods_http_port(rendered: list[dict[str, Any]]) -> None:
    web_policy = find(rendered, "NetworkPolicy", "blog-api-web")["spec"]
    assert selects(web_policy["podSelector"]["matchLabels"], pod_labels(rendered, "blog-api-web"))
    (rule,) = web_policy["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    worker_policy = find(rendered, "NetworkPolicy", "blog-api-worker")["spec"]
    assert selects(worker_policy["podSelector"]["matchLabels"], pod_labels(rendered, "blog-api-worker"))
    assert worker_policy["policyTypes"] == ["Ingress"]
    assert "ingress" not in worker_policy  # no connection in


def test_every_checkov_suppression_says_why() -> None:
    """checkov runs in CI (tox env checkov); a finding is fixed or skipped inline with its reason."""
    skips = []
    for path in [*EXAMPLE.glob("terraform/**/*.tf"), *BASE.glob("*.yaml")]:
        text = path.read_text()
        skips += [(path.name, *m) for m in re.findall(r"checkov:skip=(CKV2?_\w+):(.*)", text)]
        skips += [(path.name, *m) for m in re.findall(r"checkov\.io/skip\d+: (CKV2?_\w+)=(.*)", text)]
    assert len(skips) >= 10
    assert [skip for skip in skips if len(skip[2].split()) < 5] == []
