"""``manage.py prodkit_monitoring``: rules, alerts, a dashboard or alarms for the declared objectives."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_prodkit.objectives import load
from django_prodkit.objectives.documents import to_yaml

TARGETS = ("prometheus", "prometheusrule", "grafana", "cloudwatch")


def _label(raw: str) -> tuple[str, str]:
    name, sep, value = raw.partition("=")
    if not sep or not name:
        raise CommandError(f"--label {raw!r} is not NAME=VALUE.")
    return name, value


class Command(BaseCommand):
    help = (
        "Write the monitoring for PRODKIT['OBJECTIVES']: Prometheus recording and burn-rate alerting rules "
        "(prometheus), the same as a prometheus-operator PrometheusRule (prometheusrule), a Grafana dashboard "
        "(grafana), or CloudWatch burn-rate alarms as PutMetricAlarm/PutCompositeAlarm input (cloudwatch)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("target", choices=TARGETS, help="What to write.")
        parser.add_argument("--output", "-o", help="Write to this file instead of standard output.")
        parser.add_argument("--namespace", default="", help="prometheusrule: the Kubernetes namespace.")
        parser.add_argument(
            "--label", action="append", default=[], help="prometheusrule: NAME=VALUE metadata label; repeatable."
        )
        parser.add_argument(
            "--alarm-action", action="append", default=[], help="cloudwatch: an ARN to notify; repeatable."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        declaration, problems = load()
        errors = [p for p in problems if p.is_error]
        if errors:
            raise CommandError(
                "PRODKIT['OBJECTIVES'] has problems (manage.py check lists them):\n"
                + "\n".join(f"{p.id}: {p.message}" for p in errors)
            )
        for problem in problems:
            self.stderr.write(f"{problem.id}: {problem.message} {problem.hint}")
        if not declaration.objectives and options["target"] != "grafana":
            raise CommandError("PRODKIT['OBJECTIVES'] is empty: declare an objective first (docs: Objectives).")
        text = self._render(declaration, options)
        if options["output"]:
            try:
                Path(options["output"]).write_text(text)
            except OSError as exc:
                raise CommandError(f"Cannot write {options['output']}: {exc.strerror or exc}") from exc
            self.stdout.write(f"wrote {options['output']}")
        else:
            self.stdout.write(text, ending="")

    def _render(self, declaration: Any, options: dict[str, Any]) -> str:
        target = options["target"]
        if target == "prometheus":
            from django_prodkit.objectives.prometheus import rule_file

            return to_yaml(rule_file(declaration))
        if target == "prometheusrule":
            from django_prodkit.objectives.prometheus import prometheus_rule

            labels = dict(_label(raw) for raw in options["label"])
            return to_yaml(prometheus_rule(declaration, options["namespace"], labels))
        if target == "grafana":
            from django_prodkit.objectives.grafana import dashboard

            return json.dumps(dashboard(declaration), indent=2) + "\n"
        from django_prodkit.cloudwatch.config import CloudWatchSettings
        from django_prodkit.objectives.cloudwatch import UnsupportedObjectiveError, alarms

        try:
            document = alarms(declaration, CloudWatchSettings.from_config(), tuple(options["alarm_action"]))
        except UnsupportedObjectiveError as exc:
            raise CommandError(str(exc)) from exc
        return json.dumps(document, indent=2) + "\n"
