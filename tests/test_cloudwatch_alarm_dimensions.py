"""prodkit.W150: alarms that select by Service alone see nothing once the metrics carry more dimensions."""

from __future__ import annotations

from typing import Any

import pytest

from django_prodkit.cloudwatch.aggregator import SeriesStats
from django_prodkit.cloudwatch.checks import check_cloudwatch
from django_prodkit.cloudwatch.config import CloudWatchSettings
from django_prodkit.cloudwatch.emf import series_documents

METRICS = ["django_prodkit.middleware.MetricsMiddleware"]


def w150(settings: Any, prodkit: dict[str, Any]) -> list[Any]:
    settings.MIDDLEWARE = METRICS
    settings.PRODKIT = prodkit
    return [m for m in check_cloudwatch() if m.id == "prodkit.W150"]


def service_dimension_set(prodkit: dict[str, Any], settings: Any) -> list[str]:
    """The service-wide dimension set of the EMF document the kit writes (what an alarm must name exactly)."""
    settings.PRODKIT = prodkit
    stats = SeriesStats(count=1, durations={12.0: 1})
    (document,) = series_documents(CloudWatchSettings.from_config(), 0.0, "/api/", "GET", stats)
    return list(document["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0])


@pytest.mark.parametrize(
    ("prodkit", "expected"),
    [
        ({"METRICS_INSTANCE": "web-3"}, ["Service", "Instance"]),
        ({"CLOUDWATCH": {"DIMENSIONS": {"Environment": "production"}}}, ["Service", "Environment"]),
    ],
)
def test_extra_dimensions_leave_no_service_only_series_and_warn(
    settings: Any, prodkit: dict[str, Any], expected: list[str]
) -> None:
    enabled = {**prodkit, "CLOUDWATCH": {**prodkit.get("CLOUDWATCH", {}), "ENABLED": True}}
    assert service_dimension_set(enabled, settings) == expected  # no series has Service alone
    (warning,) = w150(settings, enabled)
    assert ", ".join(expected) in warning.msg
    assert "local.prodkit_dimensions" in warning.hint
    assert ("SEARCH()" in warning.hint) is ("METRICS_INSTANCE" in prodkit)


def test_no_warning_when_the_series_is_service_alone_or_publishing_is_off(settings: Any) -> None:
    assert service_dimension_set({"CLOUDWATCH": {"ENABLED": True}}, settings) == ["Service"]
    assert w150(settings, {"CLOUDWATCH": {"ENABLED": True}}) == []
    assert w150(settings, {"METRICS_INSTANCE": "web-3", "CLOUDWATCH": {"ENABLED": False}}) == []


def test_the_instance_from_the_environment_counts(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODKIT_METRICS_INSTANCE", "task-1a2b")
    (warning,) = w150(settings, {"CLOUDWATCH": {"ENABLED": True}})
    assert "Service, Instance" in warning.msg
