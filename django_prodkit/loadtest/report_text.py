"""The terminal report and the progress display."""

from __future__ import annotations

from typing import Protocol

from django_prodkit.loadtest.config import LoadTestConfig
from django_prodkit.loadtest.engine import Progress, RunResult
from django_prodkit.loadtest.thresholds import CriterionResult

PROGRESS_BAR_WIDTH = 30
MARKS_UTF8 = {True: "\u2705 PASS", False: "\u274c FAIL"}
MARKS_PLAIN = {True: "PASS", False: "FAIL"}
ERROR_LABELS = {
    "timeout": "timeout",
    "connection_refused": "connection refused",
    "connection_reset": "connection reset by the server",
    "connection_closed": "connection closed before the response",
    "connect_error": "could not connect",
    "tls_error": "TLS error",
    "invalid_response": "invalid HTTP response",
}


def _num(value: float) -> str:
    return f"{value:g}"


def error_label(kind: str) -> str:
    """A readable name for an error kind (``http_503`` -> ``HTTP 503``)."""
    if kind.startswith("http_"):
        return f"HTTP {kind[5:]}"
    return ERROR_LABELS.get(kind, kind)


def render_header(config: LoadTestConfig) -> str:
    """The lines printed before the run starts."""
    if config.rate is not None:
        plan = f"{_num(config.rate)} req/s on a fixed schedule over up to {config.users} connections"
    else:
        plan = f"{config.users} users"
    if config.requests is not None:
        plan += f", {config.requests} requests each" if config.rate is None else ""
    if config.duration is not None:
        plan += f", for {_num(config.duration)}s"
    lines = [f"Starting load test: {plan}"]
    if config.total_requests is not None:
        lines.append(f"Total requests: {config.total_requests}")
    lines.append(f"Target: {config.target.url()} ({', '.join(config.paths)})")
    if config.warmup:
        lines.append(f"Warm-up: {config.warmup} requests, not measured")
    return "\n".join(lines) + "\n"


def _criterion(result: CriterionResult, marks: dict[bool, str]) -> str:
    unit = result.unit
    sep = "" if unit in ("%", "ms") else " "
    if result.actual is None:
        actual = "n/a"
    elif unit == "%":
        actual = f"{result.actual:.1f}%"
    else:
        actual = f"{result.actual:.2f}{sep}{unit}"
    target = f"{result.comparison}{_num(result.target)}{sep}{unit}"
    return f"  {result.label}: {actual} {marks[result.passed]} (target: {target})"


def render_report(result: RunResult, criteria: list[CriterionResult], *, utf8: bool = False) -> str:
    """The results, response times, failures by kind and the pass/fail criteria."""
    summary = result.summary
    total = summary.requests
    lines = [""]
    if result.interrupted:
        lines += ["Interrupted: the report covers the requests finished before Ctrl-C.", ""]
    lines += [
        "Results:",
        f"  Total requests: {total}",
        f"  Successful: {summary.successful} ({summary.success_rate:.1f}%)",
        f"  Failed: {summary.failed} ({100.0 * summary.failed / total if total else 0.0:.1f}%)",
        f"  Total time: {summary.duration:.2f}s",
        f"  Requests/sec: {summary.requests_per_second:.2f}",
        "",
        "Response Times:",
    ]
    latency = summary.latency
    if latency is None:
        lines.append("  no responses")
    else:
        figures = [("Min", latency.min), ("Max", latency.max), ("Avg", latency.avg), ("Median", latency.median)]
        figures += [("P95", latency.p95), ("P99", latency.p99)]
        lines.append("  " + "  ".join(f"{name}: {value:.2f}ms" for name, value in figures))
    if summary.errors:
        lines += ["", "Failures by kind:"]
        lines += [f"  {error_label(kind)}: {count}" for kind, count in summary.errors.items()]
    lines += ["", "Pass/Fail Criteria:"]
    marks = MARKS_UTF8 if utf8 else MARKS_PLAIN
    lines += [_criterion(criterion, marks) for criterion in criteria]
    return "\n".join(lines) + "\n"


class Writable(Protocol):
    """Where progress goes: a text stream, or anything with write and flush."""

    def write(self, text: str, /) -> object:
        """Write text."""

    def flush(self) -> None:
        """Flush what was written."""


class ProgressPrinter:
    """A progress line rewritten in place on a terminal; plain periodic lines anywhere else (CI logs)."""

    def __init__(self, stream: Writable, *, tty: bool) -> None:
        self.stream = stream
        self.tty = tty
        self._dirty = False

    def __call__(self, progress: Progress) -> None:
        """Show one progress snapshot."""
        rate = progress.completed / progress.elapsed if progress.elapsed > 0 else 0.0
        done = f"{progress.completed}" + (f"/{progress.expected}" if progress.expected else "")
        text = f"{progress.phase}: {done} requests, {rate:.1f} req/s, {progress.failed} failed, {progress.elapsed:.1f}s"
        if not self.tty:
            self.stream.write(text + "\n")
        else:
            bar = ""
            if progress.expected:
                filled = min(PROGRESS_BAR_WIDTH, PROGRESS_BAR_WIDTH * progress.completed // progress.expected)
                bar = "[" + "#" * filled + "." * (PROGRESS_BAR_WIDTH - filled) + "] "
            self.stream.write(f"\r\x1b[2K{bar}{text}")
            self._dirty = True
        self.stream.flush()

    def finish(self) -> None:
        """Clear the progress line before the report is printed."""
        if self._dirty:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._dirty = False
