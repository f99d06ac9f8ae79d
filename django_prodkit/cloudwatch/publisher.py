"""The per-process publisher: a background thread that closes an interval every flush and hands it to a writer."""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Protocol

from django_prodkit.cloudwatch.aggregator import Aggregator, Interval
from django_prodkit.cloudwatch.api import APIWriter, PublishError
from django_prodkit.cloudwatch.config import CloudWatchSettings
from django_prodkit.cloudwatch.emf import EMFWriter

logger = logging.getLogger("django_prodkit.cloudwatch")

#: How long the final flush at process exit may take (gunicorn's graceful timeout is 30 s by default).
SHUTDOWN_TIMEOUT_SECONDS = 10.0
#: After failures the next attempt waits interval x 2^(failures-1), at most this many intervals.
MAX_BACKOFF_INTERVALS = 4


class Writer(Protocol):
    """Publishes one interval, raising :class:`~django_prodkit.cloudwatch.api.PublishError` or ``OSError``."""

    def send(self, interval: Interval, deadline: float | None = None) -> None: ...


def make_writer(settings: CloudWatchSettings) -> Writer:
    """The writer for the configured mode."""
    if settings.mode == "api":
        return APIWriter(settings)
    return EMFWriter(settings)


class Publisher:
    """Aggregates requests and publishes them from a daemon thread, so a request never waits for CloudWatch."""

    def __init__(self, settings: CloudWatchSettings, writer: Writer | None = None) -> None:
        self.settings = settings
        self.writer = writer if writer is not None else make_writer(settings)
        self.aggregator = Aggregator(settings.buffer_size)
        self._stop = threading.Event()
        self._send_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._closed = False

    def observe(self, method: str, route: str, status: int, duration_ms: float) -> None:
        """Count one request (the metrics observer; never blocks on I/O)."""
        self.aggregator.add(method, route, status, duration_ms)

    def observe_task(self, task: str, outcome: str, duration_ms: float) -> None:
        """Count one task run (the task observer; never blocks on I/O)."""
        self.aggregator.add_task(task, outcome, duration_ms)

    def start(self) -> None:
        """Start the background thread (once)."""
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name="prodkit-cloudwatch", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        interval = self.settings.flush_interval
        next_rotate = time.monotonic() + interval
        next_send = next_rotate
        while not self._stop.wait(max(0.0, min(next_rotate, next_send) - time.monotonic())):
            now = time.monotonic()
            if now >= next_rotate:
                self.aggregator.rotate()
                next_rotate = max(next_rotate + interval, now)
            if now >= next_send:
                ok = self.flush_pending()
                next_send = next_rotate if ok else now + self._backoff()

    def _backoff(self) -> float:
        steps = min(2 ** (self._failures - 1), MAX_BACKOFF_INTERVALS)
        return float(self.settings.flush_interval * steps * random.uniform(0.5, 1.0))

    def flush_pending(self, deadline: float | None = None) -> bool:
        """Send every buffered interval, oldest first; ``False`` if one failed and must wait for a retry."""
        wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        # At exit the thread may still hang in a call; wait for it only until the deadline.
        if not self._send_lock.acquire(timeout=wait):
            return False
        try:
            self._send_all(deadline)
        except (PublishError, OSError) as exc:
            self._failures += 1
            logger.warning(
                "CloudWatch publishing failed (%s); %d series wait in the buffer for the next attempt.",
                exc,
                self.aggregator.pending_series,
            )
            return False
        finally:
            self._send_lock.release()
            self._report_overflow()
        self._failures = 0
        return True

    def _send_all(self, deadline: float | None) -> None:
        for interval in self.aggregator.pending():
            try:
                self.writer.send(interval, deadline)
            except PublishError as exc:
                if not exc.permanent:
                    raise
                dropped = self.aggregator.discard(interval)
                logger.error("CloudWatch rejected the metrics of %d requests: %s", dropped, exc)
                continue
            self.aggregator.done(interval)

    def _report_overflow(self) -> None:
        overflow = self.aggregator.take_overflow()
        if overflow is not None:
            logger.error(
                "CloudWatch buffer full (BUFFER_SIZE=%d series): dropped the metrics of %d requests "
                "(%d series in %d intervals).",
                self.settings.buffer_size,
                overflow.requests,
                overflow.series,
                overflow.intervals,
            )

    def flush(self, deadline: float | None = None) -> bool:
        """Close the current interval and send everything buffered now."""
        self.aggregator.rotate()
        return self.flush_pending(deadline)

    def close(self, timeout: float = SHUTDOWN_TIMEOUT_SECONDS) -> None:
        """Stop the thread and flush what is held, within ``timeout`` seconds (idempotent)."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        self._stop.set()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
        flushed = self.flush(deadline)
        close_writer = getattr(self.writer, "close", None)
        if close_writer is not None:
            close_writer()
        if not flushed:
            logger.error(
                "CloudWatch unreachable at exit: the metrics of %d requests were not published.",
                sum(interval.requests for interval in self.aggregator.pending()),
            )
