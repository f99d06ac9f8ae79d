"""MetricsMiddleware and the metrics endpoint through the test client: counts, formats, auth, cardinality."""

from __future__ import annotations

import json
import logging
import random
import string
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth import get_user_model
from django.test import AsyncClient, Client
from prometheus_client.parser import text_string_to_metric_families

from django_prodkit.metrics import observers
from django_prodkit.metrics.store import default_buckets, reset_store
from tests.tools import require_tool

TOKEN = "s3cret-token-for-tests"
OLD_TOKEN = "previous-token"
METRICS = "/api/v1/metrics/"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def _metrics(settings: Any) -> Iterator[None]:
    settings.MIDDLEWARE = [
        "django_prodkit.middleware.RequestIDMiddleware",
        "django_prodkit.middleware.MetricsMiddleware",
        *settings.MIDDLEWARE[1:],
    ]
    settings.PRODKIT = {"METRICS_TOKENS": [TOKEN, OLD_TOKEN]}
    reset_store()
    yield
    reset_store()


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=False)


def snapshot(client: Client) -> dict[str, Any]:
    response = client.get(METRICS, **AUTH)  # type: ignore[arg-type]
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)  # type: ignore[no-any-return]


def prometheus(client: Client, **headers: str) -> str:
    response = client.get(METRICS, **{**AUTH, **headers})  # type: ignore[arg-type]
    assert response.status_code == 200
    return response.content.decode()


def counter_values(text: str) -> dict[tuple[str, str, str], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "prodkit_http_requests_total":
                found[(sample.labels["method"], sample.labels["route"], sample.labels["status"])] = sample.value
    return found


def test_counts_every_request_exactly(client: Client) -> None:
    for _ in range(3):
        client.get("/api/v1/hello/")
    client.get("/api/v1/items/first/")
    client.get("/api/v1/items/second/")
    client.post("/api/v1/items/third/")
    client.get("/no/such/page/")
    client.get("/api/v1/boom/")
    client.get("/api/v1/healthcheck/")
    data = snapshot(client)
    assert data["request_count"] == 9
    assert data["status_codes"] == {"200": 7, "404": 1, "500": 1}
    assert data["top_endpoints"] == {
        "GET /api/v1/hello/": 3,
        "GET /api/v1/items/<slug:slug>/": 2,
        "GET /api/v1/boom/": 1,
        "GET /api/v1/healthcheck/": 1,
        "GET <unmatched>": 1,
        "POST /api/v1/items/<slug:slug>/": 1,
    }
    assert data["error_rate"] == {"4xx": round(1 / 9, 4), "5xx": round(1 / 9, 4)}
    assert data["mode"] == "single-process"
    assert data["avg_response_time_ms"] == data["response_time_ms"]["avg"] > 0
    timing = data["response_time_ms"]
    assert 0 < timing["p50"] <= timing["p95"] <= timing["p99"]
    assert set(data["top_endpoints_response_time_ms"]) == set(data["top_endpoints"])


def test_the_metrics_endpoint_is_not_counted_but_can_be(client: Client, settings: Any) -> None:
    snapshot(client)
    client.get(METRICS)
    assert snapshot(client)["request_count"] == 0
    settings.PRODKIT = {"METRICS_TOKENS": [TOKEN], "METRICS_EXCLUDE_VIEWS": []}
    reset_store()
    fresh = Client()
    snapshot(fresh)
    assert snapshot(fresh)["top_endpoints"] == {"GET /api/v1/metrics/": 1}


def test_empty_snapshot_has_every_key(client: Client) -> None:
    data = snapshot(client)
    assert data["request_count"] == 0
    assert data["avg_response_time_ms"] == 0.0
    assert data["response_time_ms"] == {"avg": 0.0, "p50": None, "p95": None, "p99": None}
    assert data["status_codes"] == {}
    assert data["error_rate"] == {"4xx": 0.0, "5xx": 0.0}
    assert data["top_endpoints"] == {}
    assert data["started_at"].endswith("+00:00")
    assert (data["mode"], data["warning"]) == ("single-process", None)


def test_top_endpoints_sorted_and_limited(client: Client, settings: Any) -> None:
    settings.PRODKIT = {"METRICS_TOKENS": [TOKEN], "METRICS_TOP_ENDPOINTS": 2}
    for path, times in (("/api/v1/hello/", 2), ("/api/v1/items/x/", 3), ("/api/v1/exposed/", 1)):
        for _ in range(times):
            client.get(path)
    data = snapshot(client)
    assert list(data["top_endpoints"].items()) == [("GET /api/v1/items/<slug:slug>/", 3), ("GET /api/v1/hello/", 2)]
    assert data["request_count"] == 6


def test_async_requests_are_counted() -> None:
    async def run() -> Any:
        client = AsyncClient(raise_request_exception=False)
        assert (await client.get("/api/v1/async/")).status_code == 200
        assert (await client.get("/api/v1/boom/")).status_code == 500
        return await client.get(METRICS, headers={"Authorization": f"Bearer {TOKEN}"})

    response = async_to_sync(run)()
    data = json.loads(response.content)
    assert data["top_endpoints"] == {"GET /api/v1/async/": 1, "GET /api/v1/boom/": 1}
    assert data["status_codes"] == {"200": 1, "500": 1}


def test_random_paths_and_methods_add_no_series(client: Client) -> None:
    rng = random.Random(4)
    for _ in range(150):
        path = "/" + "".join(rng.choices(string.ascii_lowercase, k=12)) + "/"
        method = "".join(rng.choices(string.ascii_uppercase, k=6))
        client.generic(method, path)
        client.generic(method, "/api/v1/hello/")
    data = snapshot(client)
    assert data["top_endpoints"] == {"OTHER /api/v1/hello/": 150, "OTHER <unmatched>": 150}
    text = prometheus(client, HTTP_ACCEPT="text/plain")
    assert set(counter_values(text)) == {("OTHER", "/api/v1/hello/", "200"), ("OTHER", "<unmatched>", "404")}
    series = [line for line in text.splitlines() if line and not line.startswith("#")]
    # Two endpoints: a duration histogram each (34 bounds, +Inf, sum, count), a queries histogram each (12 bounds,
    # +Inf, sum, count), a counter each, the start time and the mode.
    assert len(series) == 2 * (len(default_buckets()) + 3) + 2 * (12 + 3) + 2 + 1 + 1
    assert 'prodkit_metrics_mode{mode="single-process"} 1.0' in series


def test_prometheus_output_matches_json_and_parses(client: Client) -> None:
    client.get("/api/v1/hello/")
    client.get("/api/v1/boom/")
    client.get("/nowhere/")
    data = snapshot(client)
    text = prometheus(client, QUERY_STRING="format=prometheus")
    assert counter_values(text) == {
        ("GET", "/api/v1/hello/", "200"): 1.0,
        ("GET", "/api/v1/boom/", "500"): 1.0,
        ("GET", "<unmatched>", "404"): 1.0,
    }
    families = {f.name: f for f in text_string_to_metric_families(text)}
    counts = [s.value for s in families["prodkit_http_request_duration_seconds"].samples if s.name.endswith("_count")]
    assert sum(counts) == data["request_count"] == 3
    (started,) = families["prodkit_metrics_started_timestamp_seconds"].samples
    assert started.value > 0


def test_promtool_accepts_the_prometheus_output(client: Client) -> None:
    promtool = require_tool("promtool")
    client.get("/api/v1/hello/")
    client.get("/api/v1/items/a/")
    text = prometheus(client, QUERY_STRING="format=prometheus")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("headers", "content_type"),
    [
        ({"QUERY_STRING": "format=prometheus"}, "text/plain; version=0.0.4; charset=utf-8"),
        ({"HTTP_ACCEPT": "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"}, "text/plain; version=0.0.4; charset=utf-8"),
        ({"QUERY_STRING": "format=openmetrics"}, "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        ({"HTTP_ACCEPT": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"}, "application/openmetrics"),
        ({"HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"}, "application/json"),
        ({"HTTP_ACCEPT": "application/json, text/plain"}, "application/json"),
        ({"QUERY_STRING": "format=json", "HTTP_ACCEPT": "text/plain"}, "application/json"),
    ],
)
def test_format_negotiation(client: Client, headers: dict[str, str], content_type: str) -> None:
    response = client.get(METRICS, **{**AUTH, **headers})  # type: ignore[arg-type]
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert "Accept" in response["Vary"]
    assert "no-cache" in response["Cache-Control"]


def test_unknown_format_and_unsafe_method(client: Client) -> None:
    assert client.get(METRICS, QUERY_STRING="format=xml", **AUTH).status_code == 400  # type: ignore[arg-type]
    assert client.post(METRICS, **AUTH).status_code == 405  # type: ignore[arg-type]


def test_no_credentials_is_401_with_a_bearer_challenge(client: Client) -> None:
    response = client.get(METRICS)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    response = client.get(METRICS, HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert response.status_code == 401


@pytest.mark.parametrize("header", ["Bearer wrong", f"Bearer {TOKEN}x", "Bearer ", "bearer  "])
def test_wrong_token_is_403(client: Client, header: str) -> None:
    response = client.get(METRICS, HTTP_AUTHORIZATION=header)
    assert response.status_code == 403
    assert "invalid_token" in response["WWW-Authenticate"]


def test_every_configured_token_is_accepted(client: Client) -> None:
    for token in (TOKEN, OLD_TOKEN):
        assert client.get(METRICS, HTTP_AUTHORIZATION=f"bearer {token}").status_code == 200


def test_tokens_from_the_environment(client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.PRODKIT = {}
    monkeypatch.setenv("PRODKIT_METRICS_TOKENS", " rotated-new , rotated-old ")
    assert client.get(METRICS, HTTP_AUTHORIZATION="Bearer rotated-old").status_code == 200
    assert client.get(METRICS, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 403


def test_no_token_configured_never_matches(client: Client, settings: Any) -> None:
    settings.PRODKIT = {"METRICS_TOKENS": [""]}
    assert client.get(METRICS, HTTP_AUTHORIZATION="Bearer ").status_code == 403


@pytest.mark.django_db
def test_staff_user_may_read_and_other_users_may_not(client: Client) -> None:
    user_model = get_user_model()
    staff = user_model.objects.create_user("staff", password="pw", is_staff=True)
    member = user_model.objects.create_user("member", password="pw")
    client.force_login(member)
    assert client.get(METRICS).status_code == 403
    client.force_login(staff)
    assert client.get(METRICS).status_code == 200
    assert client.get(METRICS, HTTP_AUTHORIZATION="Bearer wrong").status_code == 200


def test_observers_see_each_counted_request(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, str, int, float]] = []

    def record(method: str, route: str, status: int, duration_ms: float) -> None:
        seen.append((method, route, status, duration_ms))

    def broken(method: str, route: str, status: int, duration_ms: float) -> None:
        raise ValueError("observer bug")

    observers.add_observer(broken)
    observers.add_observer(record)
    try:
        with caplog.at_level(logging.DEBUG, logger="django_prodkit.metrics"):
            assert client.get("/api/v1/items/a/").status_code == 200
            assert client.get("/nowhere/").status_code == 404
            snapshot(client)
    finally:
        observers.remove_observer(broken)
        observers.remove_observer(record)
    assert [s[:3] for s in seen] == [("GET", "/api/v1/items/<slug:slug>/", 200), ("GET", "<unmatched>", 404)]
    assert all(s[3] > 0 for s in seen)
    failures = [r for r in caplog.records if "observer" in r.getMessage()]
    assert [r.levelno for r in failures] == [logging.ERROR, logging.DEBUG]


@pytest.mark.parametrize("metrics_first", [False, True])
def test_health_checks_answered_by_the_health_middleware_are_counted_once(settings: Any, metrics_first: bool) -> None:
    health = "django_prodkit.middleware.HealthCheckMiddleware"
    metrics = "django_prodkit.middleware.MetricsMiddleware"
    rest = [m for m in settings.MIDDLEWARE if m != metrics]
    settings.MIDDLEWARE = [metrics, health, *rest] if metrics_first else [health, *settings.MIDDLEWARE]
    client = Client()
    assert client.get("/api/v1/healthcheck/").status_code == 200
    assert client.get("/api/v1/hello/").status_code == 200
    data = snapshot(client)
    assert data["top_endpoints"] == {"GET /api/v1/healthcheck/": 1, "GET /api/v1/hello/": 1}


def test_health_middleware_without_metrics_counts_nothing(settings: Any) -> None:
    metrics = "django_prodkit.middleware.MetricsMiddleware"
    settings.MIDDLEWARE = ["django_prodkit.middleware.HealthCheckMiddleware"] + [
        m for m in settings.MIDDLEWARE if m != metrics
    ]
    client = Client()
    assert client.get("/api/v1/healthcheck/").status_code == 200
    assert snapshot(client)["request_count"] == 0


def test_async_health_checks_are_counted(settings: Any) -> None:
    settings.MIDDLEWARE = ["django_prodkit.middleware.HealthCheckMiddleware", *settings.MIDDLEWARE]

    async def run() -> Any:
        client = AsyncClient()
        assert (await client.get("/api/v1/healthcheck/")).status_code == 200
        return await client.get(METRICS, headers={"Authorization": f"Bearer {TOKEN}"})

    assert json.loads(async_to_sync(run)().content)["top_endpoints"] == {"GET /api/v1/healthcheck/": 1}


def test_subclasses_of_our_middleware_are_recognised(settings: Any) -> None:
    """Listed by their own paths, a project's subclasses count as ours: health checks counted once, no checks."""
    from django_prodkit.health.checks import check_health_middleware
    from django_prodkit.metrics.checks import check_metrics_settings
    from django_prodkit.stack.checks import check_middleware_order

    ours = {
        "django_prodkit.middleware.RequestIDMiddleware": "tests.custom_middleware.MyRequestID",
        "django_prodkit.middleware.MetricsMiddleware": "tests.custom_middleware.MyMetrics",
    }
    rest = [ours.get(m, m) for m in settings.MIDDLEWARE]
    settings.MIDDLEWARE = [rest[0], "tests.custom_middleware.MyHealth", *rest[1:]]
    client = Client()
    assert client.get("/api/v1/healthcheck/").status_code == 200
    assert client.get("/api/v1/hello/").status_code == 200
    assert snapshot(client)["top_endpoints"] == {"GET /api/v1/healthcheck/": 1, "GET /api/v1/hello/": 1}
    assert [m.id for m in check_metrics_settings()] == []
    assert [m.id for m in check_health_middleware()] == []
    assert check_middleware_order() == []
    # The ordering checks see the subclasses where they are: the request id one listed too late warns.
    settings.MIDDLEWARE = [*settings.MIDDLEWARE[1:], settings.MIDDLEWARE[0]]
    assert [m.id for m in check_middleware_order()] == ["prodkit.W001"]
    assert [m.id for m in check_health_middleware()] == []


def test_a_cancelled_async_request_is_counted_as_499_and_the_cancellation_goes_on() -> None:
    """What Django does when an ASGI client disconnects: the view's task is cancelled (also tested with uvicorn)."""
    import asyncio

    from django.test import RequestFactory

    from django_prodkit.middleware import AccessLogMiddleware, MetricsMiddleware

    async def cancelled(request: Any) -> Any:
        raise asyncio.CancelledError

    request = RequestFactory().get("/api/v1/hello/")
    stack = MetricsMiddleware(AccessLogMiddleware(cancelled))
    with pytest.raises(asyncio.CancelledError):
        async_to_sync(stack)(request)
    assert snapshot(Client())["status_codes"] == {"499": 1}


def test_an_instance_label_is_opt_in(client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from django_prodkit.cloudwatch.config import CloudWatchSettings

    assert client.get("/api/v1/hello/").status_code == 200
    assert "service_instance_id" not in prometheus(client, HTTP_ACCEPT="text/plain")
    assert ("Instance", "web-3") not in CloudWatchSettings.from_config().service_dimensions
    monkeypatch.setenv("PRODKIT_METRICS_INSTANCE", " web-3 ")
    settings.PRODKIT = {"METRICS_TOKENS": [TOKEN]}
    text = prometheus(client, HTTP_ACCEPT="text/plain")
    families = list(text_string_to_metric_families(text))
    samples = [sample for family in families for sample in family.samples]
    assert samples
    assert all(sample.labels["service_instance_id"] == "web-3" for sample in samples)
    assert counter_values(text) == {("GET", "/api/v1/hello/", "200"): 1.0}
    assert ("Instance", "web-3") in CloudWatchSettings.from_config().service_dimensions
    settings.PRODKIT = {"METRICS_TOKENS": [TOKEN], "CLOUDWATCH": {"DIMENSIONS": {"Instance": "mine"}}}
    assert ("Instance", "mine") in CloudWatchSettings.from_config().service_dimensions
