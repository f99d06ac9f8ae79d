"""The warning line for a request over ``DB_QUERY_WARNING`` or ``SLOW_REQUEST_MS``: one stable event, figures in fields.

A log tool groups lines by their event, so the event never changes and every figure is a field. The line is written
once per route (method and URL pattern) per ``DB_QUERY_WARNING_INTERVAL`` seconds; the next one written for that
route says in ``suppressed`` how many were left out since, so a hot N+1 view costs one line a minute, not half the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("django_prodkit.db")

#: The warning line's event, the same for every request, so log tools can group and count them.
EVENT = "slow or query-heavy request"
#: Why a request was warned about, in the ``reasons`` field.
REASON_QUERIES = "queries"
REASON_DURATION = "duration"
#: The ``hint`` field when the same shape ran more than once.
N_PLUS_ONE_HINT = (
    "The same query shape ran again and again, which looks like N+1 (one query per row): "
    "load the rows with select_related() or prefetch_related()."
)
#: Routes remembered for the interval; past this the oldest are forgotten (routes are URL patterns, so few).
MAX_ROUTES = 1000


@dataclass
class _RouteState:
    last_written: float
    suppressed: int = 0


class WarningLimiter:
    """Decides, per route, whether a warning line is written now and how many were left out before it."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], _RouteState] = {}

    def admit(self, key: tuple[str, str], now: float | None = None) -> int | None:
        """The number of lines suppressed since the last one for ``key`` if a line is written now, else ``None``."""
        if self.interval <= 0:
            return 0
        now = time.monotonic() if now is None else now
        with self._lock:
            state = self._routes.get(key)
            if state is None:
                if len(self._routes) >= MAX_ROUTES:
                    del self._routes[next(iter(self._routes))]
                self._routes[key] = _RouteState(now)
                return 0
            if now - state.last_written < self.interval:
                state.suppressed += 1
                return None
            suppressed, state.suppressed, state.last_written = state.suppressed, 0, now
            return suppressed


def write_warning(
    fields: dict[str, Any], reasons: Sequence[str], shapes: Sequence[tuple[str, int]], suppressed: int
) -> None:
    """Write the line: ``fields`` (request id, method, route, figures, limits) with the reasons and shapes."""
    n_plus_one = bool(shapes) and shapes[0][1] > 1
    extra = {
        **fields,
        "reasons": list(reasons),
        "repeated_queries": [{"sql": shape, "count": count} for shape, count in shapes],
        "n_plus_one": n_plus_one,
        "suppressed": suppressed,
    }
    if n_plus_one:
        extra["hint"] = N_PLUS_ONE_HINT
    logger.warning(EVENT, extra=extra)
