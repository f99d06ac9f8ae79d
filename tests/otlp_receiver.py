"""A real OTLP/HTTP receiver for tests: decodes each protobuf ``ExportTraceServiceRequest`` (``/v1/traces``) and
``ExportMetricsServiceRequest`` (``/v1/metrics``).

Optionally checks every request's SigV4 signature by recomputing it with botocore from the test credentials,
as X-Ray's (service ``xray``) and CloudWatch's (service ``monitoring``) OTLP endpoints do, and refuses a wrong one
with 403.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
STATUS = {0: "unset", 1: "ok", 2: "error"}
TEMPORALITY = {0: "unspecified", 1: "delta", 2: "cumulative"}
METRICS_PATH = "/v1/metrics"
#: The SigV4 service of each OTLP path on AWS.
SIGV4_SERVICES = {"/v1/traces": "xray", METRICS_PATH: "monitoring"}


@dataclass
class ReceivedSpan:
    """One span as the receiver decoded it (ids in hex)."""

    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    status: str
    events: list[tuple[str, dict[str, Any]]]
    resource: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReceivedPoint:
    """One data point: a sum's ``value``, or a histogram's count, sum, bucket counts and bounds."""

    attributes: dict[str, Any]
    start_time_unix_nano: int
    time_unix_nano: int
    value: float | None = None
    count: int | None = None
    sum: float | None = None
    bucket_counts: list[int] = field(default_factory=list)
    explicit_bounds: list[float] = field(default_factory=list)
    has_min_max: bool = False


@dataclass
class ReceivedMetric:
    """One metric of one export request."""

    name: str
    unit: str
    kind: str
    temporality: str
    monotonic: bool
    points: list[ReceivedPoint]


@dataclass
class ReceivedExport:
    """One ``ExportMetricsServiceRequest``: its resource, scope names and metrics by name."""

    resource: dict[str, Any]
    scopes: list[str]
    metrics: dict[str, ReceivedMetric]


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def _attributes(items: Any) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in items}


def decode(body: bytes) -> list[ReceivedSpan]:
    """Every span in an OTLP/HTTP protobuf body."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        kind=KINDS.get(span.kind, "unspecified"),
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        attributes=_attributes(span.attributes),
                        status=STATUS[span.status.code],
                        events=[(event.name, _attributes(event.attributes)) for event in span.events],
                        resource=resource,
                    )
                )
    return spans


def _points(metric: Any, kind: str) -> list[ReceivedPoint]:
    points = []
    for point in getattr(metric, kind).data_points:
        received = ReceivedPoint(_attributes(point.attributes), point.start_time_unix_nano, point.time_unix_nano)
        if kind == "sum":
            received.value = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
        else:
            received.count = point.count
            received.sum = point.sum
            received.bucket_counts = list(point.bucket_counts)
            received.explicit_bounds = list(point.explicit_bounds)
            received.has_min_max = point.HasField("min") or point.HasField("max")
        points.append(received)
    return points


def decode_metrics(body: bytes) -> list[ReceivedExport]:
    """Every resource's metrics in an OTLP/HTTP protobuf metrics body."""
    request = ExportMetricsServiceRequest()
    request.ParseFromString(body)
    exports = []
    for resource_metrics in request.resource_metrics:
        metrics: dict[str, ReceivedMetric] = {}
        scopes = []
        for scope_metrics in resource_metrics.scope_metrics:
            scopes.append(scope_metrics.scope.name)
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                data = getattr(metric, kind)
                assert metric.name not in metrics, f"{metric.name} twice in one export"
                metrics[metric.name] = ReceivedMetric(
                    name=metric.name,
                    unit=metric.unit,
                    kind=kind,
                    temporality=TEMPORALITY[data.aggregation_temporality],
                    monotonic=getattr(data, "is_monotonic", False),
                    points=_points(metric, kind),
                )
        exports.append(ReceivedExport(_attributes(resource_metrics.resource.attributes), scopes, metrics))
    return exports


def sigv4_is_valid(
    method: str, url: str, headers: dict[str, str], body: bytes, credentials: Any, region: str, service: str = "xray"
) -> bool:
    """Recompute the request's SigV4 signature with botocore and compare it with the one it carries."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    authorization = headers.get("authorization", "")
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        return False
    fields = dict(part.strip().split("=", 1) for part in authorization[len("AWS4-HMAC-SHA256 ") :].split(","))
    signed = fields["SignedHeaders"].split(";")
    if "x-amz-date" not in signed or not fields["Credential"].endswith(f"/{region}/{service}/aws4_request"):
        return False
    request = AWSRequest(method=method, url=url, data=body, headers={name: headers[name] for name in signed})
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(credentials, service, region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return bool(fields["Signature"] == expected)


class Receiver:
    """An OTLP/HTTP receiver on 127.0.0.1 (a free port) in a thread; stop it with :meth:`close`."""

    def __init__(self, credentials: Any = None, region: str = "eu-west-1", port: int = 0) -> None:
        self.spans: list[ReceivedSpan] = []
        self.exports: list[ReceivedExport] = []
        self.requests = 0
        self.refused = 0
        #: The status the receiver answers with (a collector refusing points answers 400).
        self.answer = 200
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                url = f"http://{headers['host']}{self.path}"
                service = SIGV4_SERVICES.get(self.path, "xray")
                valid = credentials is None or sigv4_is_valid("POST", url, headers, body, credentials, region, service)
                if not valid:
                    with receiver._lock:
                        receiver.refused += 1
                    self.send_response(403)
                    self.end_headers()
                    return
                if receiver.answer != 200:
                    self.send_response(receiver.answer)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                elif headers.get("content-encoding") == "deflate":
                    body = zlib.decompress(body)
                if self.path == METRICS_PATH:
                    exports = decode_metrics(body)
                    with receiver._lock:
                        receiver.requests += 1
                        receiver.exports.extend(exports)
                    payload = ExportMetricsServiceResponse().SerializeToString()
                else:
                    spans = decode(body)
                    with receiver._lock:
                        receiver.requests += 1
                        receiver.spans.extend(spans)
                    payload = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.metrics_url = f"http://127.0.0.1:{self.server.server_address[1]}{METRICS_PATH}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 20.0) -> list[ReceivedSpan]:
        """The spans received once there are at least ``count`` (or when ``timeout`` seconds have passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.spans) >= count:
                    return list(self.spans)
            time.sleep(0.05)
        with self._lock:
            return list(self.spans)

    def wait_for_exports(self, count: int, timeout: float = 20.0) -> list[ReceivedExport]:
        """The metrics exports received once there are at least ``count`` (or when ``timeout`` seconds have passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.exports) >= count:
                    return list(self.exports)
            time.sleep(0.05)
        with self._lock:
            return list(self.exports)

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
