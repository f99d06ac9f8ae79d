"""Abort on fail: stop a run as soon as a threshold can no longer be met, whatever the rest of the run does."""

from __future__ import annotations

from collections.abc import Sequence

from django_prodkit.loadtest.config import RequestSpec
from django_prodkit.loadtest.engine import Engine
from django_prodkit.loadtest.outcome import STOP_THRESHOLD
from django_prodkit.loadtest.recorder import Recorder
from django_prodkit.loadtest.thresholds import OVERALL, Criterion

# Without a known total (a timed run) a threshold counts as lost once it fails over this many requests.
MIN_REQUESTS = 100


class AbortCheck:
    """Called on each of the engine's watchdog ticks; reads only the samples added since the last call."""

    def __init__(self, criteria: Sequence[Criterion], specs: Sequence[RequestSpec], expected: int | None) -> None:
        # Only criteria that some count of failures or slow responses can lose are watched (not avg, not rps).
        self.criteria = [c for c in criteria if c.lost(1, 1, 0)]
        self.specs = specs
        self.expected = expected
        self.names = [spec.label for spec in specs]
        self.seen: dict[str, int] = {}
        self.failed: dict[str, int] = {}
        self.over = [0] * len(self.criteria)
        self._responses = 0
        self._errors = 0
        self._dropped = 0
        self._recorder: Recorder | None = None
        self.reason: str | None = None

    def _count(self, scope: str, failed: bool) -> None:
        for key in (OVERALL, scope):
            self.seen[key] = self.seen.get(key, 0) + 1
            self.failed[key] = self.failed.get(key, 0) + failed

    def __call__(self, engine: Engine) -> None:
        """Take in the new samples; stop the engine when a threshold is lost."""
        # The warm-up is not measured: it can neither pass nor fail a threshold.
        if engine.stopped or engine.phase != "test":
            return
        recorder = engine.recorder
        if recorder is not self._recorder:
            self._recorder = recorder
            self._responses = self._errors = self._dropped = 0
        for i in range(self._responses, len(recorder.latencies)):
            request, latency_ms = recorder.requests[i], recorder.latencies[i] * 1000.0
            name = self.names[request]
            self._count(name, not self.specs[request].is_success(recorder.statuses[i]))
            for j, criterion in enumerate(self.criteria):
                if criterion.scope in (OVERALL, name) and latency_ms > criterion.target:
                    self.over[j] += 1
        for request, _, _ in recorder.errors[self._errors :]:
            self._count(self.names[request], True)
        # Dropped requests fail the final verdict's error rate: they count here the same way.
        for request, _ in recorder.dropped[self._dropped :]:
            self._count(self.names[request], True)
        self._responses, self._errors = len(recorder.latencies), len(recorder.errors)
        self._dropped = len(recorder.dropped)
        for j, criterion in enumerate(self.criteria):
            seen = self.seen.get(criterion.scope, 0)
            expected = self.expected
            if expected is None or criterion.scope != OVERALL:
                if seen < MIN_REQUESTS:
                    continue
                expected = seen
            if criterion.lost(self.failed.get(criterion.scope, 0), self.over[j], expected):
                self.reason = criterion.expression or criterion.label
                engine.stop(STOP_THRESHOLD)
                return
