"""``manage.py healthcheck [--ready|--live] [--url URL] [--timeout S]``: one line, exit 0 healthy, 1 not."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_prodkit.conf import get_config
from django_prodkit.health import client as health_probe

#: Seconds a URL probe waits for the answer when ``--timeout`` is not given.
DEFAULT_URL_TIMEOUT = 5.0


class Command(BaseCommand):
    help = (
        "Check this project's health for a container HEALTHCHECK: the readiness checks (default) or liveness, "
        "run in this process, or a probe of --url. Prints one line; exits 0 when healthy, 1 when not."
    )
    # A probe every few seconds: the system checks would only slow it down, and they ran at deploy time.
    requires_system_checks = ()

    def add_arguments(self, parser: CommandParser) -> None:
        kind = parser.add_mutually_exclusive_group()
        kind.add_argument("--ready", action="store_true", help="readiness: databases, caches, HEALTH_CHECKS (default)")
        kind.add_argument("--live", action="store_true", help="liveness: the process is up, no dependency touched")
        parser.add_argument(
            "--url", help="probe this URL instead; a bare http://host:port gets the endpoint's path appended"
        )
        parser.add_argument(
            "--timeout",
            type=float,
            help=f"seconds (default HEALTH_CHECK_TIMEOUT for the checks, {DEFAULT_URL_TIMEOUT:g} for --url)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ready = not options["live"]
        timeout = options["timeout"]
        if timeout is not None and not timeout > 0:
            raise CommandError("--timeout must be a positive number of seconds", returncode=2)
        if options["url"]:
            url = health_probe.endpoint_url(options["url"], ready=ready)
            healthy, line = health_probe.probe_url(url, timeout=DEFAULT_URL_TIMEOUT if timeout is None else timeout)
        else:
            checks_timeout = float(get_config()["HEALTH_CHECK_TIMEOUT"]) if timeout is None else timeout
            healthy, line = health_probe.in_process(ready=ready, timeout=checks_timeout)
        self.stdout.write(line)
        if not healthy:
            self.stdout.flush()
            sys.exit(1)
