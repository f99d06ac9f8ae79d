"""The health endpoints' plumbing: the liveness body, and the health views served ahead of the middleware."""

from __future__ import annotations

import time
from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, Resolver404, ResolverMatch, get_script_prefix, resolve, reverse

from django_prodkit import __version__
from django_prodkit.conf import get_config
from django_prodkit.health.probes import STATUS_OK

#: Monotonic time the module was loaded (at startup, through the middleware or the URLconf).
STARTED_AT = time.monotonic()

#: The URL names of the health endpoints, whose paths ``HealthCheckMiddleware`` serves by default.
HEALTH_URL_NAMES = ("prodkit:healthcheck", "prodkit:readiness")


def liveness_payload() -> dict[str, Any]:
    """The body of the liveness endpoint: status, service, version and uptime; touches no database or cache."""
    config = get_config()
    return {
        "status": STATUS_OK,
        "service": config["SERVICE_NAME"],
        "version": config["SERVICE_VERSION"] or None,
        "prodkit_version": __version__,
        "uptime_seconds": round(time.monotonic() - STARTED_AT, 3),
    }


def endpoint_matches(paths: list[str] | tuple[str, ...]) -> dict[str, ResolverMatch]:
    """Map each request path (``request.path``) that ``HealthCheckMiddleware`` serves to its resolved view.

    Empty ``paths`` means the paths of :data:`HEALTH_URL_NAMES` in the URLconf; a path that does not resolve
    is left out (system check ``prodkit.W019`` reports it). Call it inside a request, so the script prefix is set.
    """
    wanted = list(paths)
    if not wanted:
        for name in HEALTH_URL_NAMES:
            try:
                wanted.append(reverse(name))
            except NoReverseMatch:
                continue
    prefix = get_script_prefix()
    matches: dict[str, ResolverMatch] = {}
    for path in wanted:
        path_info = "/" + path[len(prefix) :] if path.startswith(prefix) else path
        try:
            matches[path] = resolve(path_info)
        except Resolver404:  # reported by the system check prodkit.W019, not per request
            continue
    return matches


def serve(request: HttpRequest, match: ResolverMatch) -> Any:
    """Call the health view ``match`` resolved to, as the URL resolver would."""
    request.resolver_match = match
    return match.func(request, *match.args, **match.kwargs)
