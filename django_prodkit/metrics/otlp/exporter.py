"""The export: one OTLP/HTTP request per interval from the process holding the export lock, off the request path.

Cumulative (the default): every point carries the totals since the server started, so a point that could not
be sent is kept in a bounded buffer and sent late, oldest first, and a point dropped from a full buffer loses
nothing the next one does not carry. Delta: the baseline moves only when a point was accepted, so the next
point after an outage covers all of it. A dead endpoint costs one warning per outage and one attempt per
interval, in the export thread only.
"""

from __future__ import annotations

import gzip
import logging
import math
import socket
import threading
import time
import uuid
import zlib
from collections import deque
from enum import Enum
from typing import Any

from django_prodkit import __version__
from django_prodkit.metrics.otlp.config import CUMULATIVE, SIGV4_SERVICE, ExportSettings, safe_url
from django_prodkit.metrics.otlp.encoding import encode
from django_prodkit.metrics.otlp.leader import Leadership
from django_prodkit.metrics.otlp.series import Snapshot, delta, from_json, snapshot, to_json
from django_prodkit.metrics.store import MetricStore

logger = logging.getLogger("django_prodkit.metrics")

CONTENT_TYPE = "application/x-protobuf"
USER_AGENT = f"django-prodkit/{__version__}"
#: Answers that say the point itself is refused: sending it again cannot help, so it is dropped.
REFUSED = frozenset({400, 413, 415})
SERVICE_NAME = "service.name"
SERVICE_INSTANCE_ID = "service.instance.id"
PROCESS_PREFIX = "process."


class Outcome(Enum):
    """What became of one request."""

    SENT = "sent"
    REFUSED = "refused"
    FAILED = "failed"


def build_resource(settings: ExportSettings, store: MetricStore) -> dict[str, object]:
    """``OTEL_RESOURCE_ATTRIBUTES``/``OTEL_SERVICE_NAME`` (through the SDK), the kit's service name, an instance id.

    The export speaks for the server, not for the process that happens to hold the lock: the SDK's own
    ``service.instance.id`` (a UUID per process, new after each fork) and any ``process.*`` attribute would
    start new series at every handover, so they are replaced by an id that every worker of one server run
    shares (from the host, the multiprocess directory and the server's start), unless the variables set one.
    """
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource

    attributes: dict[str, object] = {
        key: value for key, value in Resource.create().attributes.items() if not key.startswith(PROCESS_PREFIX)
    }
    if str(attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        attributes[SERVICE_NAME] = settings.service_name
    if SERVICE_INSTANCE_ID not in OTELResourceDetector().detect().attributes:
        if settings.instance:
            attributes[SERVICE_INSTANCE_ID] = settings.instance
        elif store.directory is not None:
            seed = f"{socket.gethostname()}|{store.directory}|{store.started_at!r}"
            attributes[SERVICE_INSTANCE_ID] = str(uuid.uuid5(uuid.NAMESPACE_URL, seed))
        else:
            attributes[SERVICE_INSTANCE_ID] = str(uuid.uuid4())
    return attributes


class MetricsExporter:
    """Exports the store's aggregate over OTLP/HTTP; :meth:`export_once` is one interval's work."""

    def __init__(self, settings: ExportSettings, store: MetricStore, endpoint: str, session: Any) -> None:
        self.settings = settings
        self.store = store
        self.endpoint = endpoint
        self.target = safe_url(endpoint)
        self._session = session
        self._headers = {"Content-Type": CONTENT_TYPE, "User-Agent": USER_AGENT, **dict(settings.headers)}
        if settings.compression != "none":
            self._headers["Content-Encoding"] = settings.compression
        self.leadership = Leadership(store.directory)
        self.resource = build_resource(settings, store)
        self._pending: deque[bytes] = deque()
        self._dropped = 0
        self._down = False
        self._refusing = False
        # What the holders of the lock share (see ``leader``): whether the endpoint is down, the delta baseline.
        self._state: dict[str, Any] | None = None
        self._baseline: tuple[int, dict[Any, tuple[float, ...]]] = (0, {})
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def export_once(self) -> bool:
        """Export now if this process holds the export lock; whether it does."""
        with self._lock:
            if not self.leadership.claim():
                return False
            started_at = self.store.started_at
            if self._state is None:
                self._take_over(started_at)
            current = snapshot(self.store.families())
            now = time.time_ns()
            if self.settings.temporality == CUMULATIVE:
                self._queue(self._body(current, math.floor(started_at * 1e9), now))
                self._flush()
            else:
                self._export_delta(current, started_at, now)
            return True

    def _take_over(self, started_at: float) -> None:
        state = self.leadership.load(started_at)
        if state is None:
            state = {"started_at": started_at, "down": False}
        self._state = state
        # An outage the previous holder already warned about is the same outage.
        self._down = bool(state.get("down"))
        if "values" in state:
            self._baseline = (int(state["start_ns"]), from_json(state["values"]))
        else:
            self._baseline = (math.floor(started_at * 1e9), {})

    def _save(self, **changes: Any) -> None:
        if self._state is None:
            return
        self._state.update(changes)
        try:
            self.leadership.save(self._state)
        except OSError:
            logger.debug("could not save the OTLP export state", exc_info=True)

    def _body(self, series: Snapshot, start_ns: int, now: int) -> bytes:
        body = encode(series, self.resource, start_ns, now, self.settings.temporality).SerializeToString()
        if self.settings.compression == "gzip":
            return gzip.compress(body)
        return zlib.compress(body) if self.settings.compression == "deflate" else body

    def _queue(self, body: bytes) -> None:
        if len(self._pending) >= self.settings.buffer_size:
            self._pending.popleft()
            self._dropped += 1
        self._pending.append(body)

    def _flush(self) -> None:
        while self._pending:
            if self._send(self._pending[0]) is Outcome.FAILED:
                return
            self._pending.popleft()

    def _export_delta(self, current: Snapshot, started_at: float, now: int) -> None:
        start_ns, values = self._baseline
        changed = delta(current, values)
        if not changed.values:
            return
        if self._send(self._body(changed, start_ns, now)) is Outcome.SENT:
            self._baseline = (now, current.values)
            self._save(start_ns=now, values=to_json(current.values))

    def _send(self, body: bytes) -> Outcome:
        try:
            response = self._session.post(
                self.endpoint, data=body, headers=self._headers, timeout=self.settings.timeout
            )
            status: int | None = response.status_code
            response.close()
        except Exception as exc:
            # The exception's text may hold the URL and its credentials: only its type is logged.
            return self._failed(type(exc).__name__)
        if status is not None and 200 <= status < 300:
            self._refusing = False
            self._recovered()
            return Outcome.SENT
        if status in REFUSED:
            # Once until an export is accepted again: an endpoint that refuses every point would flood the log.
            if not self._refusing:
                self._refusing = True
                logger.warning("%s refused a metrics export with HTTP %s; it was dropped.", self.target, status)
            return Outcome.REFUSED
        return self._failed(f"HTTP {status}")

    def _failed(self, reason: str) -> Outcome:
        if not self._down:
            self._down = True
            self._save(down=True)
            logger.warning(
                "Could not export metrics to %s (%s); trying again every %g s, keeping up to %d exports.",
                self.target,
                reason,
                self.settings.interval,
                self.settings.buffer_size,
            )
        return Outcome.FAILED

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            self._save(down=False)
            # Not a warning: an outage logs one warning, when it starts.
            logger.info(
                "Metrics reach %s again; %d exports were sent late, %d dropped from the full buffer.",
                self.target,
                len(self._pending),
                self._dropped,
            )
            self._dropped = 0

    def run(self) -> None:
        """Export every interval in the calling thread until :meth:`close`."""
        self._thread = threading.current_thread()
        warned = False
        while not self._stop.wait(self.settings.interval):
            try:
                self.export_once()
            except Exception:
                # Never ends the thread; the traceback once, then quietly.
                if not warned:
                    warned = True
                    logger.exception("The OTLP metrics export failed; it is tried again every interval.")

    def close(self, final: bool = True) -> None:
        """Stop the thread; export a last time if this process holds the lock; let another process export."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.settings.timeout + 1.0)
        # Not while the endpoint is known to be down: a worker's exit must not wait for another timeout.
        if final and self.leadership.held and not self._down:
            try:
                self.export_once()
            except Exception:
                logger.debug("the last OTLP metrics export failed", exc_info=True)
        self.leadership.release()
        close_session = getattr(self._session, "close", None)
        if close_session is not None:
            close_session()


def build_exporter(settings: ExportSettings, store: MetricStore) -> MetricsExporter:
    """The exporter for ``settings``: a plain requests session, or one that signs with SigV4 for CloudWatch."""
    import requests

    if not settings.sigv4:
        return MetricsExporter(settings, store, settings.endpoint_for(None), requests.Session())
    from django_prodkit.tracing.otel.sigv4 import botocore_region, signing_session

    region = settings.region or botocore_region()
    if region is None:
        raise ValueError("OTLP_METRICS.AWS_SIGV4 is on but no AWS region is configured (AWS_REGION).")
    return MetricsExporter(settings, store, settings.endpoint_for(region), signing_session(region, SIGV4_SERVICE))
