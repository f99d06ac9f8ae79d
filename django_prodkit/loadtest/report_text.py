"""The terminal report and the progress display."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

from django_prodkit.loadtest.config import LoadTestConfig
from django_prodkit.loadtest.outcome import STOP_DEADLINE, STOP_THRESHOLD, Progress, RunResult
from django_prodkit.loadtest.results import Tally
from django_prodkit.loadtest.server_view import render as render_view
from django_prodkit.loadtest.server_view import view_of
from django_prodkit.loadtest.thresholds import Verdict, latency_figure

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
    "dropped": "dropped (could not start on schedule)",
}
STOPPED = {
    STOP_DEADLINE: "Stopped at the run's deadline: the report covers the requests finished by then.",
    STOP_THRESHOLD: "Aborted: a threshold could no longer be met. The report covers the requests finished by then.",
}
FIGURES = (("Min", "min"), ("Max", "max"), ("Avg", "avg"), ("Median", "median"), ("P95", "p95"), ("P99", "p99"))


FORWARDED_PROTO_HINT = (
    "The server redirects to https on its own host: it saw these requests as plain http. If a TLS proxy "
    "terminates https in front of it, send --header 'X-Forwarded-Proto: https' as that proxy does (the site "
    "must trust it: security_hardening(behind_proxy=True)); otherwise test the https URL."
)


def _num(value: float) -> str:
    return f"{value:g}"


def redirect_hint(config: LoadTestConfig, tally: Tally) -> str | None:
    """Why the server redirects, when it is the usual reason: an http request answered with its https twin."""
    if config.target.tls:
        return None
    for where in tally.redirects:
        parts = urlsplit(where)
        if parts.scheme == "https" and parts.hostname == config.target.host:
            return FORWARDED_PROTO_HINT
    return None


def redirect_lines(config: LoadTestConfig, tally: Tally) -> list[str]:
    """The 3xx responses: where they pointed, whether they counted, and a hint (empty without redirects)."""
    if not tally.redirected:
        return []
    expected = any(spec.expect_status & set(tally.statuses) for spec in config.specs)
    verdict = "expected (--expect-status)" if expected else "counted as failed: the page under test was not reached"
    lines = [f"Redirects: {tally.redirected} responses were 3xx, {verdict}"]
    lines += [f"  -> {where}: {count}" for where, count in sorted(tally.redirects.items(), key=lambda i: -i[1])]
    hint = redirect_hint(config, tally)
    if not expected:
        lines.append("  Test the page they point to, or give --expect-status (a scenario's expect_status) for them.")
    if hint is not None and not expected:
        lines.append(f"  Hint: {hint}")
    return lines


def describe_load(config: LoadTestConfig) -> str:
    """The load in a few words: users (or a ramp through the stages' targets), requests, duration."""
    if config.open_loop:
        assert config.rate is not None
        plan = f"{_num(config.rate)} req/s on a fixed schedule over up to {config.users} connections"
        if config.stages:
            plan += ", stages " + " -> ".join(f"{_num(stage.target)} req/s" for stage in config.stages)
    elif config.stages:
        plan = f"{config.users} -> " + " -> ".join(f"{_num(stage.target)}" for stage in config.stages) + " users"
    else:
        plan = f"{config.users} users"
    if config.requests is not None and not config.open_loop:
        plan += f", {config.requests} requests each"
    if config.stages:
        plan += f", {len(config.stages)} stages over {_num(config.run_duration or 0)}s"
    elif config.duration is not None:
        plan += f", for {_num(config.duration)}s"
    return plan


def error_label(kind: str) -> str:
    """A readable name for an error kind (``http_503`` -> ``HTTP 503``)."""
    if kind.startswith("http_"):
        return f"HTTP {kind[5:]}"
    return ERROR_LABELS.get(kind, kind)


def render_header(config: LoadTestConfig, processes: int = 1) -> str:
    """The lines printed before the run starts."""
    lines = [f"Starting load test: {describe_load(config)}"]
    if config.share.segments > 1:
        lines.append(f"Segment: {config.share.label} of the run (run id {config.run_id})")
    if processes > 1:
        lines.append(f"Processes: {processes}")
    if config.share_requests is not None:
        lines.append(f"Total requests: {config.share_requests}")
    lines.append(f"Target: {config.target.url()} ({', '.join(spec.label for spec in config.specs)})")
    if config.warmup:
        lines.append(f"Warm-up: {config.warmup} requests, not measured")
    return "\n".join(lines) + "\n"


def _criterion(verdict: Verdict, marks: dict[bool, str]) -> str:
    criterion = verdict.criterion
    unit = criterion.unit
    sep = "" if unit in ("%", "ms") else " "
    if verdict.actual is None:
        actual = "n/a"
    elif unit == "%":
        actual = f"{verdict.actual:.1f}%"
    else:
        actual = f"{verdict.actual:.2f}{sep}{unit}"
    target = f"{criterion.comparison}{_num(criterion.target)}{sep}{unit}"
    return f"  {criterion.label}: {actual} {marks[verdict.passed]} (target: {target})"


def latency_line(tally: Tally) -> str:
    """``Min: ..ms  Max: ..ms  Avg ...`` or ``no responses``."""
    if not tally.latency.count:
        return "no responses"
    return "  ".join(f"{name}: {latency_figure(tally.latency, key) or 0.0:.2f}ms" for name, key in FIGURES)


def _per_request(name: str, tally: Tally) -> list[str]:
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(tally.statuses.items())) or "none"
    lines = [f"  {name}: {tally.requests} requests, {tally.failed} failed ({100 - tally.success_rate:.1f}%)"]
    lines.append(f"    Status codes: {statuses}")
    lines += [f"    {error_label(kind)}: {count}" for kind, count in tally.failures().items()]
    lines.append(f"    {latency_line(tally)}")
    return lines


def render_report(result: RunResult, verdicts: list[Verdict], *, utf8: bool = False) -> str:
    """The results, response times, failures by kind, the figures per request and the pass/fail criteria."""
    results = result.results
    total = results.total
    lines = [""]
    if result.stopped is not None:
        message = "Interrupted: the report covers the requests finished before Ctrl-C."
        lines += [STOPPED.get(result.stopped, message), ""]
    lines += [
        "Results:",
        f"  Total requests: {total.requests}",
        f"  Successful: {total.successful} ({total.success_rate:.1f}%)",
        f"  Failed: {total.failed} ({100.0 * total.failed / total.requests if total.requests else 0.0:.1f}%)",
    ]
    if total.dropped:
        lines.append(f"  Dropped: {total.dropped} (open loop: could not start on schedule)")
    lines += [
        f"  Total time: {results.duration:.2f}s",
        f"  Requests/sec: {results.requests_per_second:.2f}",
        "",
        "Response Times:",
        f"  {latency_line(total)}",
    ]
    if total.errors:
        lines += ["", "Failures by kind:"]
        lines += [f"  {error_label(kind)}: {count}" for kind, count in total.failures().items()]
    redirects = redirect_lines(result.config, total)
    if redirects:
        lines += ["", *redirects]
    if len(results.by_name) > 1:
        lines += ["", "Per request:"]
        for name, tally in results.by_name.items():
            lines += _per_request(name, tally)
    view = view_of(result)
    if view is not None:
        lines += ["", *render_view(view)]
    lines += ["", "Pass/Fail Criteria:"]
    marks = MARKS_UTF8 if utf8 else MARKS_PLAIN
    lines += [_criterion(verdict, marks) for verdict in verdicts]
    return "\n".join(lines) + "\n"


class Writable(Protocol):
    """Where progress goes: a text stream, or anything with write and flush."""

    def write(self, text: str, /) -> object:
        """Write text."""

    def flush(self) -> None:
        """Flush what was written."""


def _clock(seconds: float) -> str:
    seconds = max(int(seconds + 0.5), 0)
    return f"{seconds // 60}:{seconds % 60:02d}"


class ProgressPrinter:
    """A progress line rewritten in place on a terminal; plain periodic lines anywhere else (CI logs)."""

    def __init__(self, stream: Writable, *, tty: bool) -> None:
        self.stream = stream
        self.tty = tty
        self._dirty = False

    def __call__(self, progress: Progress) -> None:
        """Show one progress snapshot: done of the total, rate, failures, elapsed and the time left."""
        rate = progress.completed / progress.elapsed if progress.elapsed > 0 else 0.0
        done = f"{progress.completed}" + (f"/{progress.expected}" if progress.expected else "")
        text = f"{progress.phase}: {done} requests, {rate:.1f} req/s, {progress.failed} failed, {progress.elapsed:.1f}s"
        fraction = None
        if progress.expected:
            fraction = min(progress.completed / progress.expected, 1.0)
            if rate > 0:
                text += f", ETA {_clock((progress.expected - progress.completed) / rate)}"
        elif progress.duration:
            fraction = min(progress.elapsed / progress.duration, 1.0)
            text += f", ETA {_clock(progress.duration - progress.elapsed)}"
        if not self.tty:
            self.stream.write(text + "\n")
        else:
            bar = ""
            if fraction is not None:
                filled = int(PROGRESS_BAR_WIDTH * fraction)
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
