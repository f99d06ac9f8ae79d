"""Every sample of one phase of a run, appended as it happens and turned into results at the end."""

from __future__ import annotations

import time
from array import array

MAX_LOCATION = 200
MAX_REDIRECT_KEYS = 64


class Recorder:
    """Per response: latency, end time, request index and status; per failure without a response: its kind."""

    __slots__ = (
        "bytes_received",
        "dropped",
        "ends",
        "errors",
        "finished",
        "latencies",
        "redirects",
        "requests",
        "started",
        "statuses",
    )

    def __init__(self, started: float | None = None) -> None:
        self.latencies: array[float] = array("d")
        self.ends: array[float] = array("d")
        self.requests: array[int] = array("H")
        self.statuses: array[int] = array("H")
        # (request index, kind, end time) of requests that got no response, and of requests never started.
        self.errors: list[tuple[int, str, float]] = []
        self.dropped: list[tuple[int, float]] = []
        # (request index, Location) of 3xx responses -> how many; at most a few distinct targets are kept.
        self.redirects: dict[tuple[int, str], int] = {}
        self.bytes_received = 0
        self.started = time.perf_counter() if started is None else started
        self.finished: float | None = None

    @property
    def completed(self) -> int:
        """Requests finished so far, with a response or an error."""
        return len(self.latencies) + len(self.errors)

    def record_response(self, request: int, status: int, latency: float, now: float) -> None:
        """A response arrived."""
        self.latencies.append(latency)
        self.ends.append(now)
        self.requests.append(request)
        self.statuses.append(status)

    def record_redirect(self, request: int, location: bytes) -> None:
        """A 3xx response pointed at ``location`` (kept without its query string: it may carry tokens)."""
        where = location.decode("latin-1").split("?", 1)[0].split("#", 1)[0][:MAX_LOCATION] or "(no Location)"
        key = (request, where)
        if key in self.redirects or len(self.redirects) < MAX_REDIRECT_KEYS:
            self.redirects[key] = self.redirects.get(key, 0) + 1

    def record_error(self, request: int, kind: str, now: float) -> None:
        """A request that got no response: timeout, refused or reset connection, invalid response..."""
        self.errors.append((request, kind, now))

    def record_dropped(self, request: int, now: float) -> None:
        """A request of the open-loop schedule that could not be started in time."""
        self.dropped.append((request, now))
