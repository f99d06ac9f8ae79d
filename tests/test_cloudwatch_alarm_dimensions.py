"""prodkit.W150: a per-instance dimension leaves fixed alarms on the service's dimensions without data."""

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


def service_dimension_set(settings: Any, prodkit: dict[str, Any]) -> list[str]:
    """The service-wide dimension set of the EMF document the kit writes (what an alarm must name exactly)."""
    settings.PRODKIT = prodkit
    stats = SeriesStats(count=1, durations={12.0: 1})
    (document,) = series_documents(CloudWatchSettings.from_config(), 0.0, "/api/", "GET", stats)
    return list(document["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0])


def test_an_instance_dimension_leaves_no_service_series_and_warns(settings: Any) -> None:
    prodkit = {"METRICS_INSTANCE": "web-3", "CLOUDWATCH": {"ENABLED": True, "DIMENSIONS": {"Env": "prod"}}}
    assert service_dimension_set(settings, prodkit) == ["Service", "Env", "Instance"]  # differs per instance
    (warning,) = w150(settings, prodkit)
    assert "Service, Env, Instance" in warning.msg
    assert "Instance='web-3'" in warning.msg
    assert "SEARCH()" in warning.hint


def test_fixed_dimensions_or_publishing_off_do_not_warn(settings: Any) -> None:
    assert service_dimension_set(settings, {"CLOUDWATCH": {"ENABLED": True}}) == ["Service"]
    # A fixed extra dimension is one more name for the alarms (local.prodkit_dimensions), not a trap.
    assert w150(settings, {"CLOUDWATCH": {"ENABLED": True, "DIMENSIONS": {"Env": "prod"}}}) == []
    assert w150(settings, {"METRICS_INSTANCE": "web-3", "CLOUDWATCH": {"ENABLED": False}}) == []


def test_the_instance_from_the_environment_counts(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRODKIT_METRICS_INSTANCE", "task-1a2b")
    (warning,) = w150(settings, {"CLOUDWATCH": {"ENABLED": True}})
    assert "Service, Instance" in warning.msg
