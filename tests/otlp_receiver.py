"""A real OTLP/HTTP traces receiver for tests: decodes each protobuf ``ExportTraceServiceRequest``.

Optionally checks every request's SigV4 signature by recomputing it with botocore from the test credentials,
as X-Ray's OTLP endpoint does, and refuses a wrong one with 403.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
STATUS = {0: "unset", 1: "ok", 2: "error"}


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


def sigv4_is_valid(method: str, url: str, headers: dict[str, str], body: bytes, credentials: Any, region: str) -> bool:
    """Recompute the request's SigV4 signature with botocore and compare it with the one it carries."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    authorization = headers.get("authorization", "")
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        return False
    fields = dict(part.strip().split("=", 1) for part in authorization[len("AWS4-HMAC-SHA256 ") :].split(","))
    signed = fields["SignedHeaders"].split(";")
    if "x-amz-date" not in signed or not fields["Credential"].endswith(f"/{region}/xray/aws4_request"):
        return False
    request = AWSRequest(method=method, url=url, data=body, headers={name: headers[name] for name in signed})
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(credentials, "xray", region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return bool(fields["Signature"] == expected)


class Receiver:
    """An OTLP/HTTP receiver on 127.0.0.1 (a free port) in a thread; stop it with :meth:`close`."""

    def __init__(self, credentials: Any = None, region: str = "eu-west-1", port: int = 0) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self.refused = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {name.lower(): value for name, value in self.headers.items()}
                url = f"http://{headers['host']}{self.path}"
                if credentials is not None and not sigv4_is_valid("POST", url, headers, body, credentials, region):
                    with receiver._lock:
                        receiver.refused += 1
                    self.send_response(403)
                    self.end_headers()
                    return
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

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
