"""The CloudWatch alarms Terraform creates are what the example's objectives generate today."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import hcl2
from django.core.management import call_command

OBJECTIVES_JSON = Path(__file__).resolve().parent.parent / "terraform" / "objectives.json"
OBJECTIVES_TF = OBJECTIVES_JSON.with_suffix(".tf")


def test_committed_alarms_are_what_the_command_writes() -> None:
    out = StringIO()
    call_command("prodkit_monitoring", "cloudwatch", stdout=out)
    assert json.loads(OBJECTIVES_JSON.read_text()) == json.loads(out.getvalue()), (
        "regenerate: cd example_project && python manage.py prodkit_monitoring cloudwatch -o terraform/objectives.json"
    )


def test_terraform_creates_every_alarm_of_the_file() -> None:
    with OBJECTIVES_TF.open() as handle:
        parsed = hcl2.load(handle)
    kinds = {kind.strip('"') for block in parsed["resource"] for kind in block}
    assert kinds == {"aws_cloudwatch_metric_alarm", "aws_cloudwatch_composite_alarm"}
    text = OBJECTIVES_TF.read_text()
    assert 'file("${path.module}/objectives.json")' in text
    for key in ("AlarmName", "Metrics", "Threshold", "AlarmRule", "ComparisonOperator", "TreatMissingData"):
        assert key in text
    document = json.loads(OBJECTIVES_JSON.read_text())
    assert {a["AlarmName"] for a in document["composite_alarms"]} == {
        f"blog-api-{name}-{severity}" for name in ("availability", "latency") for severity in ("page", "ticket")
    }
