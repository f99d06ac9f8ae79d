"""Wait for an ECS service's deployment and judge it: exit 0 when it ends SUCCESSFUL, 1 on a rollback or a stop.

``aws ecs wait services-stable`` only checks "one deployment, running = desired", which is true again after ECS
rolled a failed deployment back: the old version runs, and the step is green. This script follows the deployment
itself (``ListServiceDeployments`` to find the one that started after ``--since``, then
``DescribeServiceDeployments``) until ECS calls it ``SUCCESSFUL``, and fails on ``ROLLBACK_*``, ``STOPPED`` or its
deadline. The deadline is at least the deployment's bake times (canary and final) plus a margin, whatever
``--timeout`` says, so the step cannot give up while ECS is still watching the alarms.

With ``--image`` it first rolls that image out on an Express service (its primary container as it is, with only
the image changed: ``DescribeExpressGatewayService`` then ``UpdateExpressGatewayService``); without it, it follows
a deployment started at ``--since`` by someone else::

    python example_project/deploy/wait_for_deployment.py --service-arn "$SERVICE_ARN" --image "$IMAGE"

Needs ``ecs:ListServiceDeployments`` on the service and ``ecs:DescribeServiceDeployments`` on its
``service-deployment/<cluster>/<service>/*`` ARNs, and with ``--image`` ``ecs:DescribeExpressGatewayService``,
``ecs:UpdateExpressGatewayService`` and ``iam:PassRole`` (example_project/terraform/github_oidc.tf grants them).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

SUCCESSFUL = "SUCCESSFUL"
#: Statuses after which this deployment will never be SUCCESSFUL: ECS rolls back, or someone stopped it.
FAILED = frozenset(
    {"ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"}
    | {"STOP_REQUESTED", "STOPPED"}
)
DEFAULT_TIMEOUT = 40 * 60
DEFAULT_INTERVAL = 15.0
#: How long ECS may take to list the deployment an update started.
DEFAULT_START_GRACE = 180.0
#: Time beyond the bake times for scaling tasks up and shifting traffic.
BAKE_MARGIN = 15 * 60


class DeploymentError(Exception):
    """The deployment failed, was not found, or could not be read; the message says which."""


@dataclass
class Watch:
    """What the wait loop needs from the outside world, replaceable in tests."""

    client: Any
    out: TextIO = sys.stdout
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    annotate: bool = field(default_factory=lambda: os.environ.get("GITHUB_ACTIONS") == "true")

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def error(self, message: str) -> None:
        self.say(f"::error::{message}" if self.annotate else f"error: {message}")


def parse_service_arn(arn: str) -> tuple[str, str]:
    """``(cluster, service)`` from ``arn:aws:ecs:<region>:<account>:service/<cluster>/<service>``."""
    parts = arn.split(":", 5)
    resource = parts[5].split("/") if len(parts) == 6 and parts[2] == "ecs" else []
    if len(resource) != 3 or resource[0] != "service" or not all(resource[1:]):
        raise DeploymentError(f"{arn!r} is not an ECS service ARN (arn:aws:ecs:<region>:<account>:service/<c>/<s>)")
    return resource[1], resource[2]


def find_deployment(client: Any, cluster: str, service: str, since: dt.datetime) -> str | None:
    """The ARN of the newest deployment of the service created after ``since``, or None."""
    newest: dict[str, Any] | None = None
    kwargs: dict[str, Any] = {"cluster": cluster, "service": service, "createdAt": {"after": since}}
    while True:
        page = client.list_service_deployments(**kwargs)
        for deployment in page.get("serviceDeployments", []):
            if newest is None or deployment["createdAt"] > newest["createdAt"]:
                newest = deployment
        if not page.get("nextToken"):
            return None if newest is None else str(newest["serviceDeploymentArn"])
        kwargs["nextToken"] = page["nextToken"]


def bake_seconds(deployment: dict[str, Any]) -> float:
    """The minutes ECS watches the new revision before calling it SUCCESSFUL, in seconds."""
    config = deployment.get("deploymentConfiguration", {})
    minutes = config.get("bakeTimeInMinutes", 0) or 0
    minutes += (config.get("canaryConfiguration") or {}).get("canaryBakeTimeInMinutes", 0) or 0
    linear = config.get("linearConfiguration") or {}
    if linear.get("stepPercent"):
        minutes += (linear.get("stepBakeTimeInMinutes", 0) or 0) * max(1, int(100 // linear["stepPercent"]))
    return float(minutes) * 60


def describe(client: Any, arn: str) -> dict[str, Any]:
    answer = client.describe_service_deployments(serviceDeploymentArns=[arn])
    for failure in answer.get("failures", []):
        raise DeploymentError(f"cannot read {arn}: {failure.get('reason', '?')} {failure.get('detail', '')}".strip())
    deployments = answer.get("serviceDeployments", [])
    if not deployments:
        raise DeploymentError(f"ECS returned no deployment for {arn}")
    return dict(deployments[0])


def why_failed(deployment: dict[str, Any]) -> str:
    """The reasons ECS gives: the status reason, the rollback's, and what tripped (circuit breaker or alarms)."""
    reasons = [deployment.get("statusReason", "")]
    rollback = deployment.get("rollback") or {}
    reasons.append(rollback.get("reason", ""))
    breaker = deployment.get("deploymentCircuitBreaker") or {}
    if breaker.get("status") == "TRIGGERED":
        reasons.append(f"circuit breaker: {breaker.get('failureCount', '?')} failed tasks")
    alarms = deployment.get("alarms") or {}
    if alarms.get("triggeredAlarmNames"):
        reasons.append("alarms in ALARM: " + ", ".join(alarms["triggeredAlarmNames"]))
    return "; ".join(reason for reason in reasons if reason) or "ECS gave no reason"


def wait(
    watch: Watch,
    service_arn: str,
    since: dt.datetime,
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = DEFAULT_INTERVAL,
    start_grace: float = DEFAULT_START_GRACE,
) -> str:
    """Follow the deployment to its end; return its ARN when SUCCESSFUL, raise :class:`DeploymentError` otherwise."""
    cluster, service = parse_service_arn(service_arn)
    started = watch.clock()
    arn = find_deployment(watch.client, cluster, service, since)
    while arn is None:
        if watch.clock() - started >= start_grace:
            raise DeploymentError(f"no deployment of {service} started after {since.isoformat()}")
        watch.sleep(interval)
        arn = find_deployment(watch.client, cluster, service, since)
    watch.say(f"deployment {arn}")
    deadline = started + timeout
    extended = False
    last = ("", "")
    while True:
        deployment = describe(watch.client, arn)
        if not extended:
            extended = True
            needed = bake_seconds(deployment) + BAKE_MARGIN
            if needed > timeout:
                deadline = started + needed
                watch.say(f"deadline raised to {needed / 60:.0f} minutes: the bake times alone take longer")
        status = deployment["status"]
        state = (status, deployment.get("lifecycleStage", ""))
        if state != last:
            watch.say(" ".join(part for part in (f"status {state[0]}", state[1] and f"stage {state[1]}") if part))
            last = state
        if status == SUCCESSFUL:
            return arn
        if status in FAILED:
            raise DeploymentError(f"deployment ended {status}: {why_failed(deployment)}")
        if watch.clock() >= deadline:
            raise DeploymentError(f"deployment still {status} after {(deadline - started) / 60:.0f} minutes")
        watch.sleep(interval)


def roll_out(client: Any, service_arn: str, image: str) -> dt.datetime:
    """Replace the image of the Express service's primary container; return when the update was sent."""
    service = client.describe_express_gateway_service(serviceArn=service_arn)["service"]
    configurations = service.get("activeConfigurations") or []
    if not configurations or "primaryContainer" not in configurations[0]:
        raise DeploymentError(f"{service_arn} has no active configuration with a primary container to update")
    container = {**configurations[0]["primaryContainer"], "image": image}
    # ListServiceDeployments filters on ECS's clock; a second back covers a clock a little behind ours.
    sent = dt.datetime.now(tz=dt.timezone.utc) - dt.timedelta(seconds=1)
    client.update_express_gateway_service(serviceArn=service_arn, primaryContainer=container)
    return sent


def parse_since(raw: str) -> dt.datetime:
    """Seconds since the epoch (``date +%s``) or an ISO 8601 time with its offset."""
    try:
        return dt.datetime.fromtimestamp(float(raw), tz=dt.timezone.utc)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is neither epoch seconds nor an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{raw!r} has no UTC offset")
    return moment


def positive(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a positive number of seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--service-arn", required=True, help="the ECS (Express) service ARN")
    start = parser.add_mutually_exclusive_group(required=True)
    start.add_argument("--image", help="roll this image out on the Express service first, then follow it")
    start.add_argument("--since", type=parse_since, help="follow a deployment started after this (epoch seconds)")
    parser.add_argument("--timeout", type=positive, default=DEFAULT_TIMEOUT, help="seconds (raised to the bake times)")
    parser.add_argument("--interval", type=positive, default=DEFAULT_INTERVAL, help="seconds between polls")
    parser.add_argument("--region", default=None, help="AWS region (default: the environment's)")
    return parser


def main(argv: Sequence[str] | None = None, client: Any = None, out: TextIO = sys.stdout) -> int:
    """Command-line entry point: 0 when the deployment succeeded, 1 when it did not, 2 on bad arguments."""
    args = build_parser().parse_args(argv)
    if client is None:
        import boto3
        from botocore.config import Config

        client = boto3.client("ecs", region_name=args.region, config=Config(retries={"mode": "standard"}))
    watch = Watch(client, out=out)
    try:
        parse_service_arn(args.service_arn)
        since = args.since
        if args.image:
            since = roll_out(client, args.service_arn, args.image)
            watch.say(f"rolling out {args.image}")
        arn = wait(watch, args.service_arn, since, args.timeout, args.interval)
    except DeploymentError as exc:
        watch.error(str(exc))
        return 1
    except Exception as exc:
        # botocore's errors (credentials, network, throttling, access denied): one line, not a traceback.
        watch.error(f"cannot follow the deployment: {type(exc).__name__}: {exc}")
        return 1
    watch.say(f"deployment {arn} SUCCESSFUL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
