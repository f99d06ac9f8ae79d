"""``manage.py cloudwatch_dashboard``: print (or ``--apply``) the CloudWatch dashboard and alarms."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_prodkit.cloudwatch import dashboard
from django_prodkit.cloudwatch.config import CloudWatchSettings


def _session_region() -> str | None:
    try:
        import boto3
    except ImportError:
        return None
    region = boto3.session.Session().region_name
    return str(region) if region else None


class Command(BaseCommand):
    help = (
        "Print the CloudWatch dashboard and alarms for this service as JSON for PutDashboard/PutMetricAlarm "
        "(or Terraform); --apply creates them through boto3."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--apply", action="store_true", help="Create or update them through boto3.")
        parser.add_argument("--region", help="AWS region (default: CLOUDWATCH.REGION, then boto3's).")
        parser.add_argument("--namespace", help="Metric namespace (default: CLOUDWATCH.NAMESPACE).")
        parser.add_argument("--service", help="Service dimension (default: the configured service name).")
        parser.add_argument("--dashboard-name", default="", help="Dashboard name (default: the service).")
        parser.add_argument("--error-rate", type=float, default=1.0, help="Error rate alarm threshold in %%.")
        parser.add_argument("--include-4xx", action="store_true", help="Count 4xx responses as errors too.")
        parser.add_argument("--p95-ms", type=float, default=500.0, help="p95 response time alarm threshold (ms).")
        parser.add_argument("--5xx-per-minute", dest="errors_5xx", type=float, default=10.0, help="5xx alarm limit.")
        parser.add_argument("--evaluation-periods", type=int, default=5, help="Minutes an alarm looks back.")
        parser.add_argument("--datapoints-to-alarm", type=int, default=3, help="Breaching minutes among them.")
        parser.add_argument("--top-endpoints", type=int, default=10, help="Endpoints in the top-endpoints graph.")
        parser.add_argument(
            "--alarm-action", action="append", default=[], help="An ARN (e.g. SNS topic) to notify; repeatable."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        settings = CloudWatchSettings.from_config()
        region = options["region"] or settings.region or _session_region()
        if not region:
            raise CommandError(
                "No AWS region: pass --region or set AWS_DEFAULT_REGION or PRODKIT['CLOUDWATCH']['REGION']."
            )
        if not 1 <= options["datapoints_to_alarm"] <= options["evaluation_periods"]:
            raise CommandError("--datapoints-to-alarm must be between 1 and --evaluation-periods.")
        dashboard_options = dashboard.DashboardOptions(
            namespace=options["namespace"] or settings.namespace,
            service=options["service"] or settings.service,
            region=region,
            dimensions=settings.dimensions,
            dashboard_name=options["dashboard_name"],
            error_rate_percent=options["error_rate"],
            include_4xx=options["include_4xx"],
            p95_ms=options["p95_ms"],
            errors_5xx_per_minute=options["errors_5xx"],
            evaluation_periods=options["evaluation_periods"],
            datapoints_to_alarm=options["datapoints_to_alarm"],
            top_endpoints=options["top_endpoints"],
            alarm_actions=tuple(options["alarm_action"]),
        )
        document = dashboard.render(dashboard_options)
        if not options["apply"]:
            self.stdout.write(json.dumps(document, indent=2))
            return
        try:
            import boto3
        except ImportError as exc:
            raise CommandError("--apply needs boto3: pip install django-prodkit[aws]") from exc
        client = boto3.session.Session().client("cloudwatch", region_name=region, endpoint_url=settings.endpoint_url)
        try:
            written = dashboard.apply(document, client)
        except Exception as exc:
            raise CommandError(f"CloudWatch refused: {exc}") from exc
        finally:
            client.close()
        for line in written:
            self.stdout.write(f"created or updated {line}")
