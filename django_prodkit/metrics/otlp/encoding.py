"""Series to an OTLP ``ExportMetricsServiceRequest`` (opentelemetry-proto's protobuf classes).

Counters become monotonic sums, histograms explicit-bucket histograms on the kit's bucket bounds. The
store keeps no minimum or maximum per histogram, so those optional fields are left unset rather than guessed.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from django_prodkit import __version__
from django_prodkit.metrics.otlp.config import CUMULATIVE
from django_prodkit.metrics.otlp.series import BY_NAME, Attributes, Snapshot

#: The instrumentation scope of every metric the kit exports.
SCOPE = "django_prodkit"

_TEMPORALITY = {
    CUMULATIVE: metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE,
    "delta": metrics_pb2.AGGREGATION_TEMPORALITY_DELTA,
}


def _any(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def key_values(attributes: Attributes | Mapping[str, object]) -> list[KeyValue]:
    """OTLP attributes from pairs or a mapping."""
    pairs = attributes.items() if isinstance(attributes, Mapping) else attributes
    return [KeyValue(key=key, value=_any(value)) for key, value in pairs]


def encode(
    series: Snapshot, resource: Mapping[str, object], start_ns: int, time_ns: int, temporality: str
) -> ExportMetricsServiceRequest:
    """One request holding every series, all with the same start and end times."""
    metrics: dict[str, metrics_pb2.Metric] = {}
    aggregation = _TEMPORALITY[temporality]
    for (name, attributes), values in sorted(series.values.items(), key=lambda item: item[0][0]):
        metric = metrics.get(name)
        instrument = BY_NAME[name]
        if metric is None:
            metric = metrics[name] = metrics_pb2.Metric(
                name=name, description=instrument.description, unit=instrument.unit
            )
            if instrument.histogram:
                metric.histogram.aggregation_temporality = aggregation
            else:
                metric.sum.aggregation_temporality = aggregation
                metric.sum.is_monotonic = True
        if instrument.histogram:
            total, count, *buckets = values
            metric.histogram.data_points.append(
                metrics_pb2.HistogramDataPoint(
                    attributes=key_values(attributes),
                    start_time_unix_nano=start_ns,
                    time_unix_nano=time_ns,
                    count=round(count),
                    sum=total,
                    bucket_counts=[round(bucket) for bucket in buckets],
                    explicit_bounds=series.bounds[name],
                )
            )
        else:
            metric.sum.data_points.append(
                metrics_pb2.NumberDataPoint(
                    attributes=key_values(attributes),
                    start_time_unix_nano=start_ns,
                    time_unix_nano=time_ns,
                    as_int=round(values[0]),
                )
            )
    scope = metrics_pb2.ScopeMetrics(
        scope=InstrumentationScope(name=SCOPE, version=__version__), metrics=list(metrics.values())
    )
    resource_metrics = metrics_pb2.ResourceMetrics(
        resource=Resource(attributes=key_values(resource)), scope_metrics=[scope]
    )
    return ExportMetricsServiceRequest(resource_metrics=[resource_metrics])
