"""``manage.py loadtest USERS REQUESTS``: a load test with pass/fail criteria (see docs/load-testing.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_prodkit.loadtest import thresholds as th
from django_prodkit.loadtest.config import (
    DEFAULT_PATH,
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    ConfigError,
    LoadTestConfig,
    parse_header,
    parse_url,
    validate,
)
from django_prodkit.loadtest.engine import LoadTestError, RunResult, run_load_test
from django_prodkit.loadtest.report_html import write_html
from django_prodkit.loadtest.report_json import write_json
from django_prodkit.loadtest.report_text import ProgressPrinter, render_header, render_report
from django_prodkit.loadtest.serve import DEFAULT_HEALTH_PATH, DEFAULT_START_TIMEOUT, GunicornServer, ServeError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_FAILED = 3
TTY_PROGRESS_INTERVAL = 0.2
PLAIN_PROGRESS_INTERVAL = 5.0


class Command(BaseCommand):
    # A client of some server: the project's system checks say nothing about whether this run is valid.
    requires_system_checks = ()
    help = (
        "Load-test an HTTP server: USERS concurrent users each sending REQUESTS requests over keep-alive connections. "
        "Exit status: 0 all criteria pass, 3 a criterion failed, 1 an error prevented the test, 2 bad arguments."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parse_error = parser.error

        # Bad arguments exit with 2 from call_command too, not with CommandError's default 1.
        def error(message: str) -> NoReturn:
            if parser.called_from_command_line:
                parse_error(message)
            raise CommandError(f"Error: {message}", returncode=EXIT_USAGE)

        parser.error = error  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("users", type=int, metavar="USERS", help="concurrent virtual users (connections)")
        parser.add_argument("requests", type=int, nargs="?", metavar="REQUESTS", help="requests per user")
        target = parser.add_argument_group("target")
        target.add_argument("--url", help=f"base URL of the server (default {DEFAULT_URL})")
        target.add_argument("--path", action="append", dest="paths", help=f"repeatable (default {DEFAULT_PATH})")
        target.add_argument("--method", default="GET")
        target.add_argument("--header", action="append", default=[], dest="headers", help="'Name: value', repeatable")
        target.add_argument("--body", help="request body")
        target.add_argument("--body-file", type=Path, help="read the request body from a file")
        target.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
        load = parser.add_argument_group("load")
        load.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per request")
        load.add_argument("--duration", type=float, help="run for this many seconds")
        load.add_argument("--rate", type=float, help="open loop: start this many requests per second on a schedule")
        load.add_argument("--warmup", type=int, default=0, help="requests sent first and not measured")
        load.add_argument("--no-uvloop", action="store_true", help="use the standard asyncio event loop")
        serve = parser.add_argument_group("serve")
        serve.add_argument("--serve", action="store_true", help="run this project under gunicorn for the test")
        serve.add_argument("--serve-workers", type=int, default=2)
        serve.add_argument("--serve-threads", type=int, default=1)
        serve.add_argument("--serve-timeout", type=float, default=DEFAULT_START_TIMEOUT, help="seconds to get healthy")
        serve.add_argument("--health-path", default=DEFAULT_HEALTH_PATH)
        criteria = parser.add_argument_group("criteria")
        criteria.add_argument("--target-success-rate", type=float, default=th.DEFAULT_SUCCESS_RATE, help="percent")
        criteria.add_argument("--target-avg-ms", type=float, default=th.DEFAULT_AVG_MS)
        criteria.add_argument("--target-rps", type=float, default=th.DEFAULT_RPS)
        criteria.add_argument("--target-p95-ms", type=float)
        criteria.add_argument("--target-p99-ms", type=float)
        criteria.add_argument("--expect-status", type=int, action="append", default=[], help="repeatable")
        output = parser.add_argument_group("output")
        output.add_argument("--json", type=Path, metavar="FILE", help="write the result as JSON")
        output.add_argument("--html", type=Path, metavar="FILE", help="write a self-contained HTML report")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config, thresholds = self._config(options)
        except ConfigError as exc:
            raise CommandError(str(exc), returncode=EXIT_USAGE) from None
        try:
            run = self._serve_and_run if options["serve"] else self._run
            result = run(config, options)
        except (LoadTestError, ServeError) as exc:
            raise CommandError(str(exc), returncode=EXIT_ERROR) from None
        except KeyboardInterrupt:
            raise CommandError("interrupted before the test started", returncode=EXIT_ERROR) from None
        self._finish(result, thresholds, options)

    def _config(self, options: dict[str, Any]) -> tuple[LoadTestConfig, th.Thresholds]:
        if options["serve"] and options["url"]:
            raise ConfigError("--serve starts its own server: leave out --url")
        if options["body"] is not None and options["body_file"] is not None:
            raise ConfigError("give --body or --body-file, not both")
        for name in ("serve_workers", "serve_threads"):
            if options[name] < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        body = (options["body"] or "").encode()
        if options["body_file"] is not None:
            try:
                body = options["body_file"].read_bytes()
            except OSError as exc:
                raise ConfigError(f"--body-file: {exc}") from None
        config = LoadTestConfig(
            target=parse_url(options["url"] or DEFAULT_URL),
            users=options["users"],
            requests=options["requests"],
            duration=options["duration"],
            rate=options["rate"],
            paths=tuple(options["paths"] or [DEFAULT_PATH]),
            method=options["method"].upper(),
            headers=tuple(parse_header(header) for header in options["headers"]),
            body=body,
            timeout=options["timeout"],
            warmup=options["warmup"],
            expect_status=frozenset(options["expect_status"]),
            insecure=options["insecure"],
        )
        targets = th.Thresholds(
            success_rate=options["target_success_rate"],
            avg_ms=options["target_avg_ms"],
            rps=options["target_rps"],
            p95_ms=options["target_p95_ms"],
            p99_ms=options["target_p99_ms"],
        )
        if not 0 <= targets.success_rate <= 100:
            raise ConfigError("--target-success-rate is a percentage between 0 and 100")
        if min(v for v in (targets.avg_ms, targets.rps, targets.p95_ms, targets.p99_ms) if v is not None) < 0:
            raise ConfigError("a --target-* value cannot be negative")
        return validate(config), targets

    def _serve_and_run(self, config: LoadTestConfig, options: dict[str, Any]) -> RunResult:
        wsgi = getattr(settings, "WSGI_APPLICATION", None)
        if not wsgi:
            raise ServeError("--serve needs settings.WSGI_APPLICATION")
        server = GunicornServer(
            wsgi,
            settings.SETTINGS_MODULE,
            workers=options["serve_workers"],
            threads=options["serve_threads"],
            health_path=options["health_path"],
            start_timeout=options["serve_timeout"],
        )
        try:
            server.launch()
            self.stdout.write(f"Started gunicorn (pid {server.pid}) serving {server.app} at {server.url}")
            self.stdout.flush()
            server.wait_healthy()
            return self._run(replace(config, target=parse_url(server.url)), options)
        finally:
            server.stop()
            self.stdout.write(f"Stopped gunicorn (pid {server.pid})")

    def _run(self, config: LoadTestConfig, options: dict[str, Any]) -> RunResult:
        self.stdout.write(render_header(config))
        self.stdout.flush()
        tty = self.stderr.isatty()
        printer = ProgressPrinter(_Stream(self.stderr.write, self.stderr.flush), tty=tty)
        try:
            return run_load_test(
                config,
                printer,
                use_uvloop=not options["no_uvloop"],
                progress_interval=TTY_PROGRESS_INTERVAL if tty else PLAIN_PROGRESS_INTERVAL,
            )
        finally:
            printer.finish()

    def _finish(self, result: RunResult, thresholds: th.Thresholds, options: dict[str, Any]) -> None:
        criteria = th.evaluate(result.summary, thresholds)
        utf8 = self.stdout.isatty() and (getattr(sys.stdout, "encoding", "") or "").lower().replace("-", "") == "utf8"
        self.stdout.write(render_report(result, criteria, utf8=utf8))
        try:
            if options["json"] is not None:
                write_json(options["json"], result, criteria)
            if options["html"] is not None:
                write_html(options["html"], result, criteria)
        except OSError as exc:
            raise CommandError(f"cannot write the report: {exc}", returncode=EXIT_ERROR) from None
        if result.interrupted:
            raise CommandError("interrupted: the test did not run to the end", returncode=EXIT_ERROR)
        failed = [criterion.label for criterion in criteria if not criterion.passed]
        if failed:
            raise CommandError(f"load test failed: {', '.join(failed)}", returncode=EXIT_FAILED)
        self.stdout.write("Load test passed.")


class _Stream:
    """The write/flush pair the progress printer needs, over Django's OutputWrapper without its styling."""

    def __init__(self, write: Callable[..., None], flush: Callable[[], None]) -> None:
        self._write = write
        self._flush = flush

    def write(self, text: str) -> None:
        self._write(text, style_func=str, ending="")

    def flush(self) -> None:
        self._flush()
