"""The command line shared by ``manage.py loadtest`` and the ``prodkit-loadtest`` console script.

Exit status: 0 every criterion passed, 3 a criterion failed (or a threshold aborted the run), 1 the run failed
(could not start, interrupted, reached its deadline, a report could not be written), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import django_prodkit
from django_prodkit.loadtest import thresholds as th
from django_prodkit.loadtest.abort import AbortCheck
from django_prodkit.loadtest.config import DEFAULT_METHOD, DEFAULT_PATH, DEFAULT_TIMEOUT, DEFAULT_URL, ConfigError
from django_prodkit.loadtest.merge import MergeError, merge_reports
from django_prodkit.loadtest.options import Plan, check_writable, load_scenario_option, plan, targets
from django_prodkit.loadtest.outcome import STOP_DEADLINE, STOP_THRESHOLD, LoadTestError, RunResult
from django_prodkit.loadtest.processes import run_processes
from django_prodkit.loadtest.report_html import write_html
from django_prodkit.loadtest.report_json import write_json
from django_prodkit.loadtest.report_text import ProgressPrinter, redirect_hint, render_header, render_report
from django_prodkit.loadtest.runner import run_load_test
from django_prodkit.loadtest.server_metrics import TOKEN_ENV, ServerMetricsError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_FAILED = 3
TTY_PROGRESS_INTERVAL = 0.2
PLAIN_PROGRESS_INTERVAL = 5.0
DESCRIPTION = (
    "Load-test an HTTP server: USERS concurrent users each sending REQUESTS requests over keep-alive connections. "
    "Exit status: 0 all criteria pass, 3 a criterion failed, 1 the run failed, 2 bad arguments."
)


class Stream(Protocol):
    """Where output goes: a text stream, or Django's wrapped stdout/stderr."""

    def write(self, text: str, /) -> object:
        """Write text."""

    def flush(self) -> None:
        """Flush what was written."""

    def isatty(self) -> bool:
        """Whether it is a terminal."""


Runner = Callable[[Plan], RunResult]


class ExitError(Exception):
    """Ends the command with an exit status and a message for stderr."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def finite(text: str) -> float:
    """An option's number: finite (``inf`` and ``nan`` are refused with the option's name, exit status 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option of the load test, with its default in its help."""
    parser.add_argument("users", type=int, nargs="?", metavar="USERS", help="concurrent virtual users (connections)")
    parser.add_argument("requests", type=int, nargs="?", metavar="REQUESTS", help="requests per user")
    target = parser.add_argument_group("target")
    target.add_argument("--url", help=f"base URL of the server (default: {DEFAULT_URL})")
    target.add_argument(
        "--path", action="append", dest="paths", default=[], help=f"repeatable (default: {DEFAULT_PATH})"
    )
    target.add_argument("--method", help=f"(default: {DEFAULT_METHOD})")
    target.add_argument("--header", action="append", default=[], dest="headers", help="'Name: value', repeatable")
    target.add_argument("--body", help="request body (default: none)")
    target.add_argument("--body-file", type=Path, help="read the request body from a file")
    target.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    target.add_argument("--scenario", type=Path, metavar="FILE", help="TOML file: request mix, stages, thresholds")
    load = parser.add_argument_group("load")
    load.add_argument(
        "--timeout", type=finite, help=f"seconds per request, from its scheduled start (default: {DEFAULT_TIMEOUT:g})"
    )
    load.add_argument("--duration", type=finite, help="run for this many seconds (default: until REQUESTS are sent)")
    load.add_argument(
        "--rate", type=finite, help="open loop: start this many requests per second (default: closed loop)"
    )
    load.add_argument("--warmup", type=int, help="requests sent first and not measured (default: 0)")
    load.add_argument("--processes", default="1", metavar="N|auto", help="engine processes (default: 1)")
    load.add_argument("--segment", metavar="I/N", help="run the I-th of N shares of the run (default: all of it)")
    load.add_argument(
        "--run-id",
        metavar="ID",
        help="the run's id in the report, which --merge checks (default: a hash of the options; no header values)",
    )
    load.add_argument("--start-at", metavar="TIME", help="start at this ISO 8601 time or epoch second (default: now)")
    load.add_argument("--no-uvloop", action="store_true", help="use the standard asyncio event loop")
    criteria = parser.add_argument_group("criteria")
    criteria.add_argument(
        "--target-success-rate",
        type=finite,
        default=th.DEFAULT_SUCCESS_RATE,
        help="percent, at least (default: %(default)g)",
    )
    criteria.add_argument(
        "--target-avg-ms", type=finite, default=th.DEFAULT_AVG_MS, help="under (default: %(default)g)"
    )
    criteria.add_argument("--target-rps", type=finite, default=th.DEFAULT_RPS, help="over (default: %(default)g)")
    criteria.add_argument("--target-p95-ms", type=finite, help="under (default: none)")
    criteria.add_argument("--target-p99-ms", type=finite, help="under (default: none)")
    criteria.add_argument(
        "--expect-status",
        type=int,
        action="append",
        default=[],
        help="repeatable; a 3xx counts only when given here (default: any 2xx)",
    )
    criteria.add_argument(
        "--threshold",
        action="append",
        default=[],
        dest="thresholds",
        metavar="[NAME:]EXPR",
        help="k6-style, e.g. 'p95<300', 'error_rate<1%%', repeatable (default: none)",
    )
    criteria.add_argument("--abort-on-fail", action="store_true", help="stop as soon as a threshold cannot be met")
    output = parser.add_argument_group("output")
    output.add_argument("--json", type=Path, metavar="FILE", help="write the result as JSON (default: none)")
    output.add_argument("--html", type=Path, metavar="FILE", help="write a self-contained HTML report (default: none)")
    output.add_argument("--merge", type=Path, nargs="+", metavar="FILE", help="merge the JSON reports of segments")
    output.add_argument(
        "--server-metrics",
        metavar="URL",
        help=f"the site's prodkit metrics URL, read before and after the run; token from ${TOKEN_ENV} (default: none)",
    )


def run_plan(the_plan: Plan, out: Stream, err: Stream, no_uvloop: bool) -> RunResult:
    """Print the plan, read the server's metrics, run it in this process or in several, read them again."""
    out.write(render_header(the_plan.config, the_plan.processes))
    out.flush()
    reader = the_plan.server_metrics
    if reader is None:
        return _run(the_plan, err, no_uvloop)
    try:
        before = reader.read(with_mode=True)
    except ServerMetricsError as exc:
        return replace(_run(the_plan, err, no_uvloop), server_error=str(exc))
    result = _run(the_plan, err, no_uvloop)
    try:
        return replace(result, server_readings=(before, reader.read()))
    except ServerMetricsError as exc:
        return replace(result, server_error=str(exc))


def _run(the_plan: Plan, err: Stream, no_uvloop: bool) -> RunResult:
    tty = err.isatty()
    printer = ProgressPrinter(err, tty=tty)
    interval = TTY_PROGRESS_INTERVAL if tty else PLAIN_PROGRESS_INTERVAL
    config = the_plan.config
    abort = [c for c in the_plan.criteria if c.expression] if the_plan.abort_on_fail else []
    try:
        if the_plan.processes > 1:
            return run_processes(
                config, the_plan.processes, printer, use_uvloop=not no_uvloop, progress_interval=interval, abort=abort
            )
        check = AbortCheck(abort, config.specs, config.share_requests) if abort else None
        return run_load_test(config, printer, use_uvloop=not no_uvloop, progress_interval=interval, on_tick=check)
    finally:
        printer.finish()


def execute(options: dict[str, Any], out: Stream, err: Stream, runner: Runner | None = None) -> None:
    """Run (or merge) as the options say; raise :class:`ExitError` unless every criterion passed."""
    try:
        if options["merge"]:
            if options["users"] is not None or options["requests"] is not None:
                raise ConfigError("--merge reads reports: leave out USERS, REQUESTS and the load options")
            if options["server_metrics"]:
                raise ConfigError("--merge compares the server's metrics the segments read: leave out --server-metrics")
            scenario = load_scenario_option(options)
            criteria = targets(options) + list(scenario.criteria if scenario else ())
            check_writable(options["json"], "--json")
            check_writable(options["html"], "--html")
            result = merge_reports(options["merge"])
            out.write(f"Merged {len(options['merge'])} reports of run {result.config.run_id}\n")
        else:
            the_plan = plan(options)
            criteria = the_plan.criteria
            result = runner(the_plan) if runner else run_plan(the_plan, out, err, options["no_uvloop"])
    except (ConfigError, MergeError) as exc:
        raise ExitError(EXIT_USAGE, str(exc)) from None
    except LoadTestError as exc:
        raise ExitError(EXIT_ERROR, str(exc)) from None
    finish(result, criteria, options, out)


def finish(result: RunResult, criteria: list[th.Criterion], options: dict[str, Any], out: Stream) -> None:
    """Print the report, write the files, and end with the right exit status."""
    verdicts = th.evaluate(result.results, criteria)
    utf8 = out.isatty() and (getattr(out, "encoding", "") or "").lower().replace("-", "") == "utf8"
    out.write(render_report(result, verdicts, utf8=utf8))
    written = []
    try:
        for key, write in (("json", write_json), ("html", write_html)):
            if options[key] is not None:
                write(options[key], result, verdicts)
                written.append(f"{key.upper()} report written to {options[key]}")
    except OSError as exc:
        raise ExitError(EXIT_ERROR, f"cannot write the report: {exc}") from None
    out.write("".join(f"{line}\n" for line in written))
    if result.stopped == STOP_THRESHOLD:
        raise ExitError(EXIT_FAILED, "load test aborted: a threshold could no longer be met")
    if result.stopped == STOP_DEADLINE:
        raise ExitError(EXIT_ERROR, "the run reached its deadline before it ended; the report covers what finished")
    if result.stopped is not None:
        raise ExitError(EXIT_ERROR, "interrupted: the test did not run to the end")
    failed = [v.criterion.label for v in verdicts if not v.passed]
    if failed:
        message = f"load test failed: {', '.join(failed)}"
        redirected = result.results.total.redirected
        if redirected and not any(spec.expect_status for spec in result.config.specs):
            message += f" ({redirected} responses were redirects: see Redirects above"
            hint = redirect_hint(result.config, result.results.total)
            message += f". {hint})" if hint else ")"
        raise ExitError(EXIT_FAILED, message)
    out.write("Load test passed.\n")


def main(argv: list[str] | None = None) -> int:
    """The ``prodkit-loadtest`` console script: the same options, no Django project needed."""
    parser = argparse.ArgumentParser(prog="prodkit-loadtest", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"django-prodkit {django_prodkit.__version__}")
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    try:
        execute(options, sys.stdout, sys.stderr)
    except ExitError as exc:
        sys.stdout.flush()
        print(f"prodkit-loadtest: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("prodkit-loadtest: interrupted before the test started", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
