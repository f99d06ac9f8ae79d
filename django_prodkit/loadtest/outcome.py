"""What a run produces and how it ended: shared by the engine, the reports, the processes and the merge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django_prodkit.loadtest.config import LoadTestConfig
from django_prodkit.loadtest.results import Results

if TYPE_CHECKING:
    from django_prodkit.loadtest.server_metrics import Reading

STOP_INTERRUPTED = "interrupted"
STOP_DEADLINE = "deadline"
STOP_THRESHOLD = "threshold"


class LoadTestError(Exception):
    """Something prevented the test from running at all (bad host, nothing listening, TLS failure)."""


@dataclass(frozen=True)
class Progress:
    """A snapshot for the progress display."""

    phase: str
    completed: int
    failed: int
    elapsed: float
    expected: int | None
    duration: float | None = None


@dataclass(frozen=True)
class RunResult:
    """The outcome of a run: the measured phase's results and how the run went."""

    config: LoadTestConfig
    results: Results
    started_at: datetime
    stopped: str | None
    parser: str
    event_loop: str
    #: ``--server-metrics``: the server's metrics read before the run and after it, or why they could not be.
    server_readings: tuple[Reading, Reading] | None = None
    server_error: str | None = None

    @property
    def interrupted(self) -> bool:
        """The run did not go to its end (Ctrl-C, its deadline, an aborting threshold)."""
        return self.stopped is not None
