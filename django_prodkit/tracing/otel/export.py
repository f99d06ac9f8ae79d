"""Getting spans out: batch processors started in each worker after the fork, and an OTLP exporter that is quiet.

``OTEL_TRACES_EXPORTER`` chooses the exporters (``otlp``, ``console``, both, or ``none``); each gets its own
batch processor, as the SDK's own configuration does.

A dead or hanging collector must never slow a request, fill memory or flood the log. Requests only append
to the batch processor's bounded queue (``OTEL_BSP_MAX_QUEUE_SIZE``, spans beyond it are dropped); the
export runs in its thread. When an export fails, one warning says so and further batches are dropped at
once, without a network call, until a probe every :data:`PROBE_INTERVAL` seconds gets through again.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter, SpanExportResult

logger = logging.getLogger("django_prodkit.tracing")

#: Seconds between export attempts while the collector is unreachable.
PROBE_INTERVAL = 5.0

#: The OpenTelemetry loggers whose per-batch warnings and tracebacks :class:`QuietExporter` speaks for.
MUTED_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.sdk.trace.export",
)


class _Muted(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.CRITICAL


MUTE = _Muted()


def mute_exporter_logs() -> None:
    """Silence the OpenTelemetry exporter's and batch processor's own per-batch messages (idempotent)."""
    for name in MUTED_LOGGERS:
        logging.getLogger(name).addFilter(MUTE)


class QuietExporter(SpanExporter):
    """Wraps an exporter: one warning per outage, no tracebacks, no network call between probes."""

    def __init__(self, inner: SpanExporter, target: str, probe_interval: float = PROBE_INTERVAL) -> None:
        self._inner = inner
        self._target = target
        self._probe_interval = probe_interval
        self._down_since: float | None = None
        self._next_probe = 0.0
        self._dropped = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export a batch, or drop it at once while the collector is known to be down."""
        now = time.monotonic()
        if self._down_since is not None and now < self._next_probe:
            self._dropped += len(spans)
            return SpanExportResult.FAILURE
        try:
            result = self._inner.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
        if result == SpanExportResult.SUCCESS:
            if self._down_since is not None:
                # Not a warning: an outage logs one warning, when it starts.
                logger.info(
                    "Spans reach %s again; %d spans were dropped while it could not be reached.",
                    self._target,
                    self._dropped,
                )
                self._down_since = None
                self._dropped = 0
            return result
        self._dropped += len(spans)
        if self._down_since is None:
            self._down_since = now
            logger.warning(
                "Could not export spans to %s; spans are dropped until it answers (tried again every %g s).",
                self._target,
                self._probe_interval,
            )
        self._next_probe = time.monotonic() + self._probe_interval
        return result

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here."""
        return True


def bounded(call: Callable[[], object], timeout: float) -> bool:
    """Run ``call`` in a daemon thread for at most ``timeout`` seconds; whether it finished (it never raises).

    A batch processor's shutdown waits for its export, and an export to a collector that does not answer
    takes the exporter's timeout and retries: an exiting worker must not wait for that.
    """

    def run() -> None:
        try:
            call()
        except Exception:
            logger.warning("OpenTelemetry tracing: could not flush the spans at shutdown.")

    thread = threading.Thread(target=run, name="prodkit-otel-shutdown", daemon=True)
    thread.start()
    thread.join(max(timeout, 0.0))
    return not thread.is_alive()


class FanOut(SpanProcessor):
    """Several processors as one (one per exporter), as the SDK's own configuration builds them."""

    def __init__(self, processors: Sequence[SpanProcessor]) -> None:
        self._processors = tuple(processors)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue the span in every processor."""
        for processor in self._processors:
            processor.on_end(span)

    def shutdown(self) -> None:
        """Shut every processor down."""
        for processor in self._processors:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush every processor."""
        flushed = [processor.force_flush(timeout_millis) for processor in self._processors]
        return all(flushed)


class ForkAwareProcessor(SpanProcessor):
    """Makes its batch processors (and so their threads) in the process that ends the first span.

    A gunicorn master that imported the application (``--preload``) never ends a span, so it never starts
    an export thread; each worker starts its own after the fork. :meth:`shutdown` waits at most
    ``shutdown_timeout`` seconds (``OTEL.SHUTDOWN_TIMEOUT``); spans not sent by then are dropped.
    """

    def __init__(self, factory: Callable[[], SpanProcessor], shutdown_timeout: float = 2.0) -> None:
        self._factory = factory
        self._processor: SpanProcessor | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self.shutdown_timeout = shutdown_timeout

    def _current(self) -> SpanProcessor:
        processor = self._processor
        if processor is None or self._pid != os.getpid():
            with self._lock:
                if self._processor is None or self._pid != os.getpid():
                    self._processor = self._factory()
                    self._pid = os.getpid()
                processor = self._processor
        return processor

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Queue the span for export (the batch processor drops it when its queue is full)."""
        self._current().on_end(span)

    def shutdown(self) -> None:
        """Export what is queued in this process and stop its threads, waiting at most ``shutdown_timeout``."""
        processor = self._processor
        self._processor = None
        if (
            processor is not None
            and self._pid == os.getpid()
            and not bounded(processor.shutdown, self.shutdown_timeout)
        ):
            logger.warning(
                "OpenTelemetry tracing: spans still queued after %g s at shutdown were dropped.",
                self.shutdown_timeout,
            )

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what is queued in this process."""
        if self._processor is not None and self._pid == os.getpid():
            return self._processor.force_flush(timeout_millis)
        return True


def batch_processor(exporters: Sequence[SpanExporter], shutdown_timeout: float = 2.0) -> ForkAwareProcessor:
    """A :class:`BatchSpanProcessor` per exporter and process (``OTEL_BSP_*`` apply)."""

    def factory() -> SpanProcessor:
        processors = [BatchSpanProcessor(exporter) for exporter in exporters]
        return processors[0] if len(processors) == 1 else FanOut(processors)

    return ForkAwareProcessor(factory, shutdown_timeout)


def console_exporter() -> SpanExporter:
    """The SDK's console exporter: one JSON document per span on standard output."""
    return ConsoleSpanExporter(out=sys.stdout)


def otlp_exporter(endpoint: str | None, session: Any = None) -> tuple[SpanExporter, str]:
    """The OTLP/HTTP protobuf exporter and the URL it sends to (``OTEL_EXPORTER_OTLP_*`` apply)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint=endpoint, session=session)
    return exporter, str(getattr(exporter, "_endpoint", endpoint or "the OTLP endpoint"))
