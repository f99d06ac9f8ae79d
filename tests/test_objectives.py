"""Service level objectives: the declaration's checks, and every generated file checked by the real tool."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from django_prodkit.objectives.checks import CHECK_IDS, check_objectives
from django_prodkit.objectives.grafana import RATE
from tests.objectives import ALERT_TESTS, OBJECTIVES, PRODKIT, RULES, rules_text
from tests.tools import require_tool

LATENCY = OBJECTIVES[1]


def command(*args: str, prodkit: dict[str, Any] | None = None) -> str:
    out, err = StringIO(), StringIO()
    with override_settings(PRODKIT=PRODKIT if prodkit is None else prodkit):
        call_command("prodkit_monitoring", *args, stdout=out, stderr=err)
    return out.getvalue()


def ids(prodkit: dict[str, Any]) -> list[str]:
    with override_settings(PRODKIT=prodkit):
        return [message.id or "" for message in check_objectives()]


@pytest.mark.parametrize(
    ("objective", "expected"),
    [
        ("not a dict", "prodkit.E002"),  # the settings type check catches it before ours
        ({**OBJECTIVES[0], "TARGT": 99}, "prodkit.E130"),
        ({**OBJECTIVES[0], "NAME": "Has Spaces"}, "prodkit.E131"),
        ({**OBJECTIVES[0], "KIND": "throughput"}, "prodkit.E132"),
        ({**OBJECTIVES[0], "TARGET": 100}, "prodkit.E133"),
        ({**OBJECTIVES[0], "TARGET": True}, "prodkit.E133"),
        ({**OBJECTIVES[0], "ROUTES": "/api/"}, "prodkit.E134"),
        ({**OBJECTIVES[0], "METHODS": ["get"]}, "prodkit.E134"),
        ({**OBJECTIVES[0], "ERRORS": ["5xx", "teapot"]}, "prodkit.E135"),
        ({**LATENCY, "THRESHOLD_MS": None}, "prodkit.E136"),
        ({**LATENCY, "THRESHOLD_MS": 0.1}, "prodkit.E136"),
        ({**LATENCY, "THRESHOLD_MS": 500}, "prodkit.W130"),
        ({**OBJECTIVES[0], "TARGET": 90}, "prodkit.W131"),
    ],
)
def test_each_declaration_mistake_has_its_check(objective: Any, expected: str) -> None:
    from django_prodkit.conf.checks import check_settings

    prodkit = {"OBJECTIVES": [objective]}
    with override_settings(PRODKIT=prodkit):
        found = [m.id for m in check_settings()] + ids(prodkit)
    assert expected in found
    assert all(m.hint for m in check_objectives()) if expected != "prodkit.E002" else True


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("OBJECTIVES_MIN_REQUESTS", -1, "prodkit.E137"),
        ("OBJECTIVES_WINDOW_DAYS", 7, "prodkit.E138"),
        ("OBJECTIVES_SELECTOR", "job=blog", "prodkit.E139"),
        ("OBJECTIVES_SELECTOR", 'status="200"', "prodkit.E139"),
    ],
)
def test_shared_settings_are_checked(key: str, value: Any, expected: str) -> None:
    assert ids({**PRODKIT, key: value}) == [expected]


def test_a_sound_declaration_has_no_messages_and_every_id_is_documented() -> None:
    assert ids(PRODKIT) == []
    assert ids({}) == []
    assert ids({**PRODKIT, "OBJECTIVES": [OBJECTIVES[0], OBJECTIVES[0]]}) == ["prodkit.E131"]
    assert set(CHECK_IDS) == {f"prodkit.E13{n}" for n in range(10)} | {"prodkit.W130", "prodkit.W131"}


def test_threshold_between_bucket_edges_uses_the_edge_below_and_says_so() -> None:
    prodkit = {**PRODKIT, "OBJECTIVES": [{**LATENCY, "THRESHOLD_MS": 500}]}
    with override_settings(PRODKIT=prodkit):
        [message] = check_objectives()
    assert "350 ms" in message.msg
    assert "0.5" in (message.hint or "")
    out, err = StringIO(), StringIO()
    with override_settings(PRODKIT=prodkit):
        call_command("prodkit_monitoring", "prometheus", stdout=out, stderr=err)
    assert "prodkit.W130" in err.getvalue()
    first = yaml.safe_load(out.getvalue())["groups"][0]["rules"][0]["expr"]
    assert 'le=~"0\\\\.35"' in first


def test_command_refuses_an_empty_or_broken_declaration_clearly(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="is empty"):
        command("prometheus", prodkit={})
    with pytest.raises(CommandError, match=r"prodkit\.E133"):
        command("prometheus", prodkit={"OBJECTIVES": [{**OBJECTIVES[0], "TARGET": 120}]})
    with pytest.raises(CommandError, match="Cannot write"):
        command("prometheus", "--output", str(tmp_path / "missing" / "rules.yml"))
    with pytest.raises(CommandError, match="NAME=VALUE"):
        command("prometheusrule", "--label", "novalue")


def test_committed_rules_are_what_the_command_writes() -> None:
    assert command("prometheus") == rules_text()
    assert RULES.read_text() == rules_text(), "regenerate: python -m tests.objectives.write_alert_tests"


def promtool_check_rules(promtool: str, path: Path) -> None:
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"OBJECTIVES_WINDOW_DAYS": 30, "OBJECTIVES_MIN_REQUESTS": 0},
        {"OBJECTIVES_SELECTOR": 'job="blog", env=~"prod|staging"', "OBJECTIVES_RUNBOOK_URL": ""},
        {"OBJECTIVES": [{**OBJECTIVES[0], "ERRORS": ["5xx", "429"], "ROUTES": ["/a.b/", '/q"uote/']}]},
    ],
)
def test_promtool_accepts_every_generated_rule_file(tmp_path: Path, extra: dict[str, Any]) -> None:
    promtool = require_tool("promtool")
    rules = tmp_path / "rules.yml"
    rules.write_text(command("prometheus", prodkit={**PRODKIT, **extra}))
    promtool_check_rules(promtool, rules)
    resource = yaml.safe_load(command("prometheusrule", prodkit={**PRODKIT, **extra}))
    spec = tmp_path / "spec.yml"
    spec.write_text(yaml.safe_dump(resource["spec"]))
    promtool_check_rules(promtool, spec)


# promtool evaluates days of synthetic series (a minute of CPU): with the server tests, on tox's corner environments.
@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_alerts_fire_in_time_and_only_when_the_budget_burns() -> None:
    """14.4x and 6x page, 3x and 1x open a ticket, each within the workbook's time; 0.9x and a quiet night never."""
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "test", "rules", str(ALERT_TESTS)], capture_output=True, text=True, timeout=590, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    scenarios = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    names = [s["name"] for s in scenarios]
    for slo in ("api-availability", "items-latency"):
        for burn in ("14.4x pages", "6x pages", "3x opens a ticket", "1x opens a ticket", "0.9x never", "quiet night"):
            assert any(name.startswith(slo) and burn in name for name in names), (slo, burn)


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_without_the_low_traffic_guard_the_quiet_night_pages(tmp_path: Path) -> None:
    """The guard is what keeps the quiet night quiet: the same scenario fails with OBJECTIVES_MIN_REQUESTS = 0."""
    promtool = require_tool("promtool")
    (tmp_path / RULES.name).write_text(command("prometheus", prodkit={**PRODKIT, "OBJECTIVES_MIN_REQUESTS": 0}))
    document = yaml.safe_load(ALERT_TESTS.read_text())
    document["tests"] = [s for s in document["tests"] if "quiet night" in s["name"]]
    (tmp_path / "night.yml").write_text(yaml.safe_dump(document))
    result = subprocess.run(
        [promtool, "test", "rules", str(tmp_path / "night.yml")], capture_output=True, text=True, timeout=290
    )
    assert result.returncode != 0
    assert 'severity="page"' in result.stdout + result.stderr


#: prometheus-operator's ``PrometheusRule`` CRD (monitoring.coreos.com/v1) as a JSON schema: the constraints of its
#: openAPIV3Schema (required names and expressions, duration patterns, string maps), with unknown fields refused as
#: ``kubectl apply --validate=strict`` does.
_DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
PROMETHEUS_RULE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {
                    "type": "string",
                    "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                },
                "namespace": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "labels": _STRINGS,
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": _DURATION,
                            "query_offset": _DURATION,
                            "limit": {"type": "integer"},
                            "labels": _STRINGS,
                            "partial_response_strategy": {"type": "string"},
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["expr"],
                                    "additionalProperties": False,
                                    "oneOf": [{"required": ["record"]}, {"required": ["alert"]}],
                                    "properties": {
                                        "record": {"type": "string"},
                                        "alert": {"type": "string"},
                                        "expr": {"type": ["string", "integer"]},
                                        "for": _DURATION,
                                        "keep_firing_for": {**_DURATION, "minLength": 1},
                                        "labels": _STRINGS,
                                        "annotations": _STRINGS,
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}


def test_prometheus_rule_matches_the_operator_schema() -> None:
    import jsonschema

    text = command("prometheusrule", "--namespace", "blog", "--label", "release=kube-prometheus-stack")
    document = yaml.safe_load(text)
    jsonschema.validate(document, PROMETHEUS_RULE_SCHEMA)
    assert document["metadata"] == {
        "name": "blog-slos",
        "namespace": "blog",
        "labels": {"app.kubernetes.io/name": "blog", "release": "kube-prometheus-stack"},
    }
    assert document["spec"] == yaml.safe_load(RULES.read_text())
    broken = {**document, "spec": {"groups": [{**document["spec"]["groups"][0], "interval": "2 minutes"}]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, PROMETHEUS_RULE_SCHEMA)


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="grafana-foundation-sdk needs Python 3.11")
def test_grafanas_own_models_read_the_dashboard() -> None:
    from grafana_foundation_sdk.models.dashboard import Dashboard

    dashboard = json.loads(command("grafana"))
    model = Dashboard.from_json(dashboard)
    assert model.title == "blog: django-prodkit"
    assert [p.title for p in model.panels or []] == [p["title"] for p in dashboard["panels"]]


def test_dashboard_is_grafana_json_and_promtool_parses_every_query(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    dashboard = json.loads(command("grafana"))
    titles = {p["title"] for p in dashboard["panels"]}
    assert {"api-availability: error budget left (28 days)", "items-latency: error budget left (28 days)"} <= titles
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    rules = [
        {"record": f"dashboard:query{n}", "expr": expr.replace(RATE, "5m")}
        for n, (_title, expr) in enumerate(dashboard_queries(dashboard))
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool_check_rules(promtool, path)


def test_cloudwatch_alarms_match_botocore_and_moto_accepts_them(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from botocore.session import get_session
    from botocore.validate import ParamValidator
    from moto.server import ThreadedMotoServer

    from django_prodkit.objectives.cloudwatch import apply
    from tests.test_cloudwatch_e2e import FAKE_AWS, free_port

    prodkit = {**PRODKIT, "CLOUDWATCH": {"NAMESPACE": "Blog"}}
    document = json.loads(command("cloudwatch", "--alarm-action", "arn:aws:sns:eu-west-1:1:pages", prodkit=prodkit))
    model = get_session().get_service_model("cloudwatch")
    validator = ParamValidator()
    for operation, key in (("PutMetricAlarm", "alarms"), ("PutCompositeAlarm", "composite_alarms")):
        shape = model.operation_model(operation).input_shape
        for alarm in document[key]:
            report = validator.validate(alarm, shape)
            assert not report.has_errors(), report.generate_report()
    assert len(document["alarms"]) == 2 * 8
    # AWS's rule for a MetricDataQuery Id, which botocore's model does not carry.
    assert all(re.fullmatch(r"[a-z][a-zA-Z0-9_]*", m["Id"]) for a in document["alarms"] for m in a["Metrics"])
    assert len(document["composite_alarms"]) == 2 * 2
    ticket = document["composite_alarms"][1]
    assert ticket["AlarmRule"].endswith('AND NOT ALARM("blog-api-availability-page")')
    latency = next(a for a in document["alarms"] if a["AlarmName"] == "blog-items-latency-burn-1h-of-1h-5m")
    assert latency["Threshold"] == pytest.approx(13.44 * 0.01)
    assert {m["MetricStat"]["Stat"] for m in latency["Metrics"] if "MetricStat" in m} == {"Sum", "PR(:350)"}

    # moto has no PutCompositeAlarm: the metric alarms go to its server, the composite alarms are checked against
    # botocore's model above and here for naming only alarms created before them.
    created: set[str] = set()
    for alarm in [*document["alarms"], *document["composite_alarms"]]:
        assert set(re.findall(r'ALARM\("([^"]+)"\)', alarm.get("AlarmRule", ""))) <= created, alarm["AlarmName"]
        created.add(alarm["AlarmName"])
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        client = boto3.session.Session(region_name="eu-west-1").client(
            "cloudwatch", endpoint_url=f"http://127.0.0.1:{port}"
        )
        written = apply({"alarms": document["alarms"], "composite_alarms": []}, client)
        found = client.describe_alarms(MaxRecords=100)["MetricAlarms"]
        client.close()
    finally:
        server.stop()
    assert len(written) == 16
    stored = {a["AlarmName"]: a for a in found}
    assert set(stored) == {a["AlarmName"] for a in document["alarms"]}
    assert stored[latency["AlarmName"]]["Metrics"][0]["Expression"] == latency["Metrics"][0]["Expression"]


def test_cloudwatch_refuses_what_its_metrics_cannot_express() -> None:
    with pytest.raises(CommandError, match="status class"):
        command("cloudwatch", prodkit={"OBJECTIVES": [{**OBJECTIVES[0], "ERRORS": ["5xx", "429"]}]})
    with pytest.raises(CommandError, match="no METHODS"):
        command("cloudwatch", prodkit={"OBJECTIVES": [{**LATENCY, "METHODS": []}]})
    routes = [f"/r{n}/" for n in range(5)]
    with pytest.raises(CommandError, match="more than CloudWatch's 10"):
        command("cloudwatch", prodkit={"OBJECTIVES": [{**LATENCY, "ROUTES": routes}]})


def test_the_dashboard_picture_is_drawn_from_the_committed_panel_data() -> None:
    script = Path(__file__).resolve().parent.parent / "docs" / "objectives_dashboard.py"
    spec = importlib.util.spec_from_file_location("objectives_dashboard", script)
    assert spec is not None
    assert spec.loader is not None
    picture = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(picture)
    data = json.loads(picture.DATA.read_text())
    titles = [panel["title"] for panel in data["panels"]]
    assert titles == [p["title"] for p in json.loads(command("grafana"))["panels"]]
    assert sum(1 for panel in data["panels"] if panel["series"]) >= len(titles) - 2  # all but the task panels
    assert picture.OUTPUT.read_text() == picture.draw(data), "run: python docs/objectives_dashboard.py"
