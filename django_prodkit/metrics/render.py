"""Renderers for the metrics endpoint: format negotiation, JSON and the Prometheus text formats."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

JSON = "json"
PROMETHEUS = "prometheus"
OPENMETRICS = "openmetrics"
FORMATS = (JSON, PROMETHEUS, OPENMETRICS)

JSON_CONTENT_TYPE = "application/json"
OPENMETRICS_MEDIA_TYPE = "application/openmetrics-text"
TEXT_MEDIA_TYPE = "text/plain"

STARTED_METRIC = "prodkit_metrics_started_timestamp_seconds"
MODE_METRIC = "prodkit_metrics_mode"
MODE_HELP = "How the counts are kept: multiprocess (every process), single-process, or per-worker (this one only)."


def negotiate(requested: str | None, accept: str) -> str | None:
    """The format asked for by ``?format=`` (which wins) or the ``Accept`` header; ``None`` if unknown.

    JSON is the default; a Prometheus scraper's ``Accept`` names OpenMetrics or ``text/plain``, a browser's
    and curl's name neither.
    """
    if requested:
        return requested if requested in FORMATS else None
    media_types = {part.split(";", 1)[0].strip().lower() for part in accept.split(",")}
    if OPENMETRICS_MEDIA_TYPE in media_types:
        return OPENMETRICS
    if TEXT_MEDIA_TYPE in media_types and JSON_CONTENT_TYPE not in media_types:
        return PROMETHEUS
    return JSON


def render_json(snapshot: dict[str, Any]) -> tuple[bytes, str]:
    """The snapshot as compact JSON."""
    return json.dumps(snapshot, separators=(",", ":")).encode(), JSON_CONTENT_TYPE


#: The label ``METRICS_INSTANCE`` adds to every series (OpenTelemetry's ``service.instance.id`` as Prometheus
#: spells it); not ``instance``, which Prometheus sets itself from the scrape target.
INSTANCE_LABEL = "service_instance_id"


def about_families(started_at: float, mode: str, warning: str | None) -> list[Metric]:
    """The gauges that say when the counts started and how they are kept.

    ``prodkit_metrics_mode{mode="..."} 1``; in per-worker mode its help is the warning the JSON carries.
    """
    started = GaugeMetricFamily(
        STARTED_METRIC,
        "When these counters started (Unix time): the server start in multiprocess mode.",
        value=started_at,
    )
    kept = GaugeMetricFamily(MODE_METRIC, warning or MODE_HELP, labels=("mode",))
    kept.add_metric((mode,), 1.0)
    return [started, kept]


class _Families:
    """A collector over already-collected families, so prometheus_client's encoders can write them."""

    def __init__(self, families: Sequence[Metric], instance: str) -> None:
        self.families = families
        self.instance = instance

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield _labelled(family, self.instance) if self.instance else family


def _labelled(family: Metric, instance: str) -> Metric:
    copy = Metric(family.name, family.documentation, family.type, family.unit)
    copy.samples = [s._replace(labels={**s.labels, INSTANCE_LABEL: instance}) for s in family.samples]
    return copy


def render_prometheus(families: Sequence[Metric], fmt: str, accept: str, instance: str = "") -> tuple[bytes, str]:
    """The families in the Prometheus text format 0.0.4, or OpenMetrics when ``fmt`` asks for it.

    A non-empty ``instance`` (``METRICS_INSTANCE``) is added to every series as :data:`INSTANCE_LABEL`.
    """
    collector = _Families(families, instance)
    if fmt == OPENMETRICS:
        if OPENMETRICS_MEDIA_TYPE not in accept:
            accept = OPENMETRICS_MEDIA_TYPE
        encoder, content_type = choose_encoder(accept)
        return encoder(collector), content_type
    return generate_latest(collector), CONTENT_TYPE_PLAIN_0_0_4
