"""``manage.py loadtest USERS REQUESTS``: a load test with pass/fail criteria (see docs/load-testing.md)."""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import NoReverseMatch, reverse

import django_prodkit
from django_prodkit.loadtest import cli
from django_prodkit.loadtest.config import ConfigError, parse_url
from django_prodkit.loadtest.options import Plan
from django_prodkit.loadtest.outcome import LoadTestError, RunResult
from django_prodkit.loadtest.serve import DEFAULT_HEALTH_PATH, DEFAULT_START_TIMEOUT, GunicornServer, ServeError
from django_prodkit.loadtest.server_metrics import MetricsReader

METRICS_URL_NAME = "prodkit:metrics"
# The server reads its tokens from here (django_prodkit.conf) and its multiprocess directory from there.
TOKENS_ENV = "PRODKIT_METRICS_TOKENS"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Command(BaseCommand):
    # A client of some server: the project's system checks say nothing about whether this run is valid.
    requires_system_checks = ()
    help = cli.DESCRIPTION

    def get_version(self) -> str:
        return f"django-prodkit {django_prodkit.__version__}"

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parse_error = parser.error

        # Bad arguments exit with 2 from call_command too, not with CommandError's default 1.
        def error(message: str) -> NoReturn:
            if parser.called_from_command_line:
                parse_error(message)
            raise CommandError(f"Error: {message}", returncode=cli.EXIT_USAGE)

        parser.error = error  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_arguments(parser)
        serve = parser.add_argument_group("serve")
        serve.add_argument("--serve", action="store_true", help="run this project under gunicorn for the test")
        serve.add_argument("--serve-workers", type=int, default=2, help="(default: %(default)s)")
        serve.add_argument("--serve-threads", type=int, default=1, help="(default: %(default)s)")
        serve.add_argument(
            "--serve-timeout",
            type=float,
            default=DEFAULT_START_TIMEOUT,
            help="seconds to get healthy (default: %(default)g)",
        )
        serve.add_argument("--health-path", default=DEFAULT_HEALTH_PATH, help="(default: %(default)s)")
        serve.add_argument(
            "--serve-log",
            type=Path,
            metavar="FILE",
            help="write gunicorn's output here (default: its last lines are printed when requests fail)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["serve"]:
            if options["url"] or options["server_metrics"]:
                message = "--serve starts its own server and reads its metrics: leave out --url and --server-metrics"
                raise CommandError(message, returncode=cli.EXIT_USAGE)
            for name in ("serve_workers", "serve_threads"):
                if options[name] < 1:
                    message = f"--{name.replace('_', '-')} must be at least 1"
                    raise CommandError(message, returncode=cli.EXIT_USAGE)
        out, err = _Stream(self.stdout), _Stream(self.stderr)

        def run(plan: Plan) -> RunResult:
            if not options["serve"]:
                return cli.run_plan(plan, out, err, options["no_uvloop"])
            return self._serve_and_run(plan, options, out, err)

        try:
            cli.execute(options, out, err, run)
        except cli.ExitError as exc:
            raise CommandError(str(exc), returncode=exc.code) from None
        except (ServeError, LoadTestError) as exc:
            raise CommandError(str(exc), returncode=cli.EXIT_ERROR) from None
        except KeyboardInterrupt:
            raise CommandError("interrupted before the test started", returncode=cli.EXIT_ERROR) from None

    def _serve_and_run(self, plan: Plan, options: dict[str, Any], out: cli.Stream, err: cli.Stream) -> RunResult:
        wsgi = getattr(settings, "WSGI_APPLICATION", None)
        if not wsgi:
            raise ServeError("--serve needs settings.WSGI_APPLICATION")
        metrics_path, token, env = _served_metrics()
        server = GunicornServer(
            wsgi,
            settings.SETTINGS_MODULE,
            workers=options["serve_workers"],
            threads=options["serve_threads"],
            health_path=options["health_path"],
            start_timeout=options["serve_timeout"],
            log_path=options["serve_log"],
            env=env,
        )
        with tempfile.TemporaryDirectory(prefix="prodkit-loadtest-metrics-") as multiproc:
            if metrics_path is not None and not os.environ.get(MULTIPROC_ENV):
                # Every worker's counts in one place, so the server's view is the whole server's.
                server.extra_env[MULTIPROC_ENV] = multiproc
            try:
                server.launch()
                self.stdout.write(f"Started gunicorn (pid {server.pid}) serving {server.app} at {server.url}")
                self.stdout.flush()
                server.wait_healthy()
                try:
                    config = replace(plan.config, target=parse_url(server.url))
                except ConfigError as exc:
                    raise ServeError(str(exc)) from None
                reader = None if metrics_path is None else MetricsReader(server.url + metrics_path, token)
                served = replace(plan, config=config, server_metrics=reader)
                result = cli.run_plan(served, out, err, options["no_uvloop"])
                self._server_output(server, result, options["serve_log"], err)
                return result
            finally:
                server.stop()
                self.stdout.write(f"Stopped gunicorn (pid {server.pid})")

    def _server_output(self, server: GunicornServer, result: RunResult, log: Path | None, err: cli.Stream) -> None:
        """Where to look when requests failed: the --serve-log file, or gunicorn's last lines."""
        if log is not None:
            err.write(f"gunicorn's output is in {log}\n")
        elif result.results.total.failed:
            tail = server.output() or "(nothing)"
            err.write(f"Requests failed; gunicorn's last lines (--serve-log FILE keeps all of them):\n{tail}\n")


def _served_metrics() -> tuple[str | None, str, dict[str, str]]:
    """The project's prodkit metrics path (None without one), a token for this run only, and gunicorn's env."""
    try:
        path = reverse(METRICS_URL_NAME)
    except NoReverseMatch:
        return None, "", {}
    token = secrets.token_urlsafe(32)
    tokens = ",".join(filter(None, [os.environ.get(TOKENS_ENV, ""), token]))
    return path, token, {TOKENS_ENV: tokens}


class _Stream:
    """A text stream over Django's OutputWrapper, without its styling and its added line endings."""

    def __init__(self, wrapper: Any) -> None:
        self._wrapper = wrapper

    def write(self, text: str) -> int:
        self._wrapper.write(text, style_func=str, ending="")
        return len(text)

    def flush(self) -> None:
        self._wrapper.flush()

    def isatty(self) -> bool:
        return bool(self._wrapper.isatty())

    @property
    def encoding(self) -> str:
        return str(getattr(self._wrapper._out, "encoding", "") or "")
