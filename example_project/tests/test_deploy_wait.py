"""deploy/wait_for_deployment.py against recorded ECS answers, each checked against botocore's ECS model.

moto (5.2) implements neither ListServiceDeployments nor DescribeServiceDeployments, so the answers are replayed with
botocore's Stubber, which rejects a request or an answer that does not fit the service model.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from deploy import wait_for_deployment as wfd

REGION = "us-east-1"
CLUSTER = "blog-api"
SERVICE = "blog-api"
SERVICE_ARN = f"arn:aws:ecs:{REGION}:123456789012:service/{CLUSTER}/{SERVICE}"
DEPLOYMENT_ARN = f"arn:aws:ecs:{REGION}:123456789012:service-deployment/{CLUSTER}/{SERVICE}/Xl5sNnSYq6l0p1TCu6Ykn"
OLD_DEPLOYMENT_ARN = DEPLOYMENT_ARN[:-3] + "old"
SINCE = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone.utc)
NEW_REVISION = f"arn:aws:ecs:{REGION}:123456789012:service-revision/{CLUSTER}/{SERVICE}/222"
OLD_REVISION = f"arn:aws:ecs:{REGION}:123456789012:service-revision/{CLUSTER}/{SERVICE}/111"
# ECS Express Mode's deployments: canary with a bake time and the alarm-based rollback it sets up itself.
EXPRESS_CONFIGURATION = {
    "strategy": "CANARY",
    "bakeTimeInMinutes": 3,
    "canaryConfiguration": {"canaryPercent": 5.0, "canaryBakeTimeInMinutes": 3},
    "deploymentCircuitBreaker": {"enable": True, "rollback": True},
    "alarms": {"alarmNames": ["blog-api-4xx-5xx"], "rollback": True, "enable": True},
}


class FakeClock:
    """Monotonic time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def ecs() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("ecs", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def listed(*arns: str, created: dt.datetime = SINCE) -> dict[str, Any]:
    return {
        "serviceDeployments": [
            {
                "serviceDeploymentArn": arn,
                "serviceArn": SERVICE_ARN,
                "createdAt": created + dt.timedelta(seconds=i),
                "status": "IN_PROGRESS",
                "targetServiceRevisionArn": NEW_REVISION,
            }
            for i, arn in enumerate(arns)
        ]
    }


def described(status: str, stage: str = "SCALE_UP", **extra: Any) -> dict[str, Any]:
    deployment = {
        "serviceDeploymentArn": DEPLOYMENT_ARN,
        "serviceArn": SERVICE_ARN,
        "clusterArn": f"arn:aws:ecs:{REGION}:123456789012:cluster/{CLUSTER}",
        "createdAt": SINCE,
        "sourceServiceRevisions": [{"arn": OLD_REVISION, "requestedTaskCount": 1, "runningTaskCount": 1}],
        "targetServiceRevision": {"arn": NEW_REVISION, "requestedTaskCount": 1, "runningTaskCount": 1},
        "status": status,
        "lifecycleStage": stage,
        "deploymentConfiguration": EXPRESS_CONFIGURATION,
        **extra,
    }
    return {"serviceDeployments": [deployment], "failures": []}


def expect_list(stubber: Stubber, answer: dict[str, Any]) -> None:
    params = {"cluster": CLUSTER, "service": SERVICE, "createdAt": {"after": SINCE}}
    stubber.add_response("list_service_deployments", answer, params)


def expect_describe(stubber: Stubber, answer: dict[str, Any]) -> None:
    stubber.add_response("describe_service_deployments", answer, {"serviceDeploymentArns": [DEPLOYMENT_ARN]})


def run(client: Any, clock: FakeClock, **kwargs: Any) -> tuple[str | None, str]:
    out = io.StringIO()
    watch = wfd.Watch(client, out=out, clock=clock, sleep=clock.sleep, annotate=False)
    try:
        return wfd.wait(watch, SERVICE_ARN, SINCE, interval=15, **kwargs), out.getvalue()
    except wfd.DeploymentError as exc:
        return None, out.getvalue() + f"error: {exc}"


# A canary whose 4xx + 5xx alarm fired: ECS rolls back, the old revision serves again with running = desired.
ROLLED_BACK = [
    described("PENDING", "RECONCILE_SERVICE"),
    described("IN_PROGRESS", "SCALE_UP"),
    described("IN_PROGRESS", "TEST_TRAFFIC_SHIFT"),
    described(
        "ROLLBACK_IN_PROGRESS",
        "PRODUCTION_TRAFFIC_SHIFT",
        statusReason="Service deployment rolled back because of alarm",
        rollback={"reason": "alarms in ALARM", "startedAt": SINCE, "serviceRevisionArn": OLD_REVISION},
        alarms={"status": "TRIGGERED", "alarmNames": ["blog-api-4xx-5xx"], "triggeredAlarmNames": ["blog-api-4xx-5xx"]},
    ),
]


def test_a_rolled_back_deployment_fails(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    expect_list(stubber, listed(DEPLOYMENT_ARN))
    for answer in ROLLED_BACK:
        expect_describe(stubber, answer)
    arn, output = run(client, FakeClock())
    assert arn is None
    assert "ended ROLLBACK_IN_PROGRESS" in output
    assert "alarms in ALARM: blog-api-4xx-5xx" in output
    assert "status IN_PROGRESS stage TEST_TRAFFIC_SHIFT" in output


def test_services_stable_is_green_after_that_same_rollback(ecs: tuple[Any, Stubber]) -> None:
    """The bug: the waiter the workflow used sees one deployment with running = desired and succeeds."""
    client, stubber = ecs
    after_rollback = {
        "services": [
            {
                "serviceArn": SERVICE_ARN,
                "serviceName": SERVICE,
                "status": "ACTIVE",
                "desiredCount": 1,
                "runningCount": 1,
                "deployments": [
                    {"id": "ecs-svc/1", "status": "PRIMARY", "taskDefinition": OLD_REVISION, "desiredCount": 1,
                     "runningCount": 1, "rolloutState": "COMPLETED"},
                ],
            }
        ],
        "failures": [],
    }  # fmt: skip
    stubber.add_response("describe_services", after_rollback, {"cluster": CLUSTER, "services": [SERVICE]})
    # One answer, and the waiter is satisfied: it raises WaiterError only while it finds the service unstable.
    assert client.get_waiter("services_stable").wait(cluster=CLUSTER, services=[SERVICE]) is None
    stubber.assert_no_pending_responses()
    assert after_rollback["services"][0]["deployments"][0]["taskDefinition"] == OLD_REVISION  # the old version


@pytest.mark.parametrize("status", sorted(wfd.FAILED))
def test_every_rollback_and_stop_status_fails(ecs: tuple[Any, Stubber], status: str) -> None:
    client, stubber = ecs
    expect_list(stubber, listed(DEPLOYMENT_ARN))
    expect_describe(stubber, described(status, statusReason="reason from ECS"))
    arn, output = run(client, FakeClock())
    assert arn is None
    assert f"ended {status}: reason from ECS" in output


def test_a_successful_deployment_passes_after_its_bake(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    # The newest of two listed deployments is the one this update started.
    expect_list(stubber, listed(OLD_DEPLOYMENT_ARN, DEPLOYMENT_ARN))
    for stage in ("SCALE_UP", "TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "BAKE_TIME"):
        expect_describe(stubber, described("IN_PROGRESS", stage))
    expect_describe(stubber, described("SUCCESSFUL", "CLEAN_UP"))
    clock = FakeClock()
    arn, output = run(client, clock)
    assert arn == DEPLOYMENT_ARN
    assert output.count("stage BAKE_TIME") == 1  # a line per change, not per poll
    assert clock.sleeps == [15] * 5


def test_a_deployment_listed_late_is_found(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    expect_list(stubber, {"serviceDeployments": []})
    expect_list(stubber, {"serviceDeployments": [], "nextToken": "page-2"})
    stubber.add_response(
        "list_service_deployments",
        listed(DEPLOYMENT_ARN),
        {"cluster": CLUSTER, "service": SERVICE, "createdAt": {"after": SINCE}, "nextToken": "page-2"},
    )
    expect_describe(stubber, described("SUCCESSFUL", "CLEAN_UP"))
    assert run(client, FakeClock())[0] == DEPLOYMENT_ARN


def test_no_deployment_started_fails(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    for _ in range(13):  # at 0, 15, ... 180 seconds
        expect_list(stubber, {"serviceDeployments": []})
    arn, output = run(client, FakeClock())
    assert arn is None
    assert "no deployment of blog-api started after 2026-12-07T12:00:00+00:00" in output


def test_the_deadline_covers_the_bake_times(ecs: tuple[Any, Stubber]) -> None:
    """A 5-minute timeout with 33 minutes of bake: the script waits out the bake instead of giving up."""
    client, stubber = ecs
    configuration = {**EXPRESS_CONFIGURATION, "bakeTimeInMinutes": 30}
    expect_list(stubber, listed(DEPLOYMENT_ARN))
    polls = int((33 + 15) * 60 / 15) + 1
    for _ in range(polls):
        expect_describe(stubber, described("IN_PROGRESS", "BAKE_TIME", deploymentConfiguration=configuration))
    clock = FakeClock()
    arn, output = run(client, clock, timeout=300)
    assert arn is None
    assert "deadline raised to 48 minutes" in output
    assert "still IN_PROGRESS after 48 minutes" in output
    assert clock.now == 48 * 60


def test_bake_seconds_counts_canary_and_linear_steps() -> None:
    assert wfd.bake_seconds({"deploymentConfiguration": EXPRESS_CONFIGURATION}) == 6 * 60
    linear = {"bakeTimeInMinutes": 2, "linearConfiguration": {"stepPercent": 25.0, "stepBakeTimeInMinutes": 4}}
    assert wfd.bake_seconds({"deploymentConfiguration": linear}) == (2 + 4 * 4) * 60
    assert wfd.bake_seconds({}) == 0


def test_access_denied_is_an_error_line_not_a_traceback(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    stubber.add_client_error(
        "list_service_deployments",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform: ecs:ListServiceDeployments",
        http_status_code=400,
    )
    out = io.StringIO()
    code = wfd.main(["--service-arn", SERVICE_ARN, "--since", str(SINCE.timestamp())], client=client, out=out)
    assert code == 1
    assert out.getvalue().startswith("error: cannot follow the deployment: AccessDeniedException: ")
    assert "ecs:ListServiceDeployments" in out.getvalue()


def test_main_reports_success_and_annotates_on_github(
    ecs: tuple[Any, Stubber], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, stubber = ecs
    expect_list(stubber, listed(DEPLOYMENT_ARN))
    expect_describe(stubber, described("SUCCESSFUL", "CLEAN_UP"))
    out = io.StringIO()
    assert wfd.main(["--service-arn", SERVICE_ARN, "--since", SINCE.isoformat()], client=client, out=out) == 0
    assert out.getvalue().endswith(f"deployment {DEPLOYMENT_ARN} SUCCESSFUL\n")

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    out = io.StringIO()
    assert wfd.main(["--service-arn", "arn:aws:ecs:us-east-1:1:cluster/x", "--since", "0"], client=client, out=out) == 1
    assert out.getvalue().startswith("::error::'arn:aws:ecs:us-east-1:1:cluster/x' is not an ECS service ARN")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "0"], "--service-arn"),
        (["--service-arn", SERVICE_ARN], "one of the arguments --image --since is required"),
        (["--service-arn", SERVICE_ARN, "--since", "0", "--image", "x:1"], "not allowed with argument"),
        (["--service-arn", SERVICE_ARN, "--since", "yesterday"], "neither epoch seconds nor an ISO 8601 time"),
        (["--service-arn", SERVICE_ARN, "--since", "2026-12-07T12:00:00"], "has no UTC offset"),
        (["--service-arn", SERVICE_ARN, "--since", "0", "--timeout", "-5"], "not a positive number"),
        (["--service-arn", SERVICE_ARN, "--since", "0", "--interval", "soon"], "not a positive number"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        wfd.main(args, client=object())
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_image_rolls_out_keeping_the_container_then_follows_the_deployment(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    container = {
        "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/blog-api:old",
        "containerPort": 8080,
        "awsLogsConfiguration": {"logGroup": "/ecs/blog-api", "logStreamPrefix": "blog-api"},
        "environment": [{"name": "SERVICE_NAME", "value": "blog-api"}],
        "secrets": [{"name": "DATABASE_URL", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"}],
    }
    service = {
        "serviceArn": SERVICE_ARN,
        "serviceName": SERVICE,
        "cluster": CLUSTER,
        "status": {"statusCode": "ACTIVE"},
        "activeConfigurations": [{"serviceRevisionArn": OLD_REVISION, "primaryContainer": container}],
    }
    stubber.add_response("describe_express_gateway_service", {"service": service}, {"serviceArn": SERVICE_ARN})
    new_image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/blog-api:abc123"
    stubber.add_response(
        "update_express_gateway_service",
        {"service": {"serviceArn": SERVICE_ARN, "serviceName": SERVICE, "cluster": CLUSTER}},
        {"serviceArn": SERVICE_ARN, "primaryContainer": {**container, "image": new_image}},
    )
    stubber.add_response(
        "list_service_deployments",
        listed(DEPLOYMENT_ARN),
        {"cluster": CLUSTER, "service": SERVICE, "createdAt": {"after": ANY}},
    )
    expect_describe(stubber, described("SUCCESSFUL", "CLEAN_UP"))
    out = io.StringIO()
    assert wfd.main(["--service-arn", SERVICE_ARN, "--image", new_image], client=client, out=out) == 0
    assert out.getvalue().startswith(f"rolling out {new_image}\n")


def test_image_on_a_service_without_configuration_fails_cleanly(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    service = {"serviceArn": SERVICE_ARN, "activeConfigurations": []}
    stubber.add_response("describe_express_gateway_service", {"service": service}, {"serviceArn": SERVICE_ARN})
    out = io.StringIO()
    assert wfd.main(["--service-arn", SERVICE_ARN, "--image", "x:1"], client=client, out=out) == 1
    assert "has no active configuration with a primary container" in out.getvalue()
