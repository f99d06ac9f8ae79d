"""Middleware stacks shared by the benchmarks."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from django_prodkit.context.http import normalize_method, route_of, user_id_of
from django_prodkit.logging import access_log_fields

#: ``django-admin startproject``'s MIDDLEWARE.
DEFAULT_STACK = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]


class BareAccessLogMiddleware:
    """One stdlib ``logger.info`` per request with the access-log fields as ``extra``, to stdout, nothing else."""

    #: The file the lines go to instead of stdout (the overhead benchmark's workers answer on their stdout).
    filename: str | None = None

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.logger = logging.getLogger("bench.bare_access")
        if not self.logger.handlers:
            handler = logging.StreamHandler(sys.stdout) if self.filename is None else logging.FileHandler(self.filename)
            handler.setFormatter(logging.Formatter("%(message)s"))
            self.logger.addHandler(handler)
            self.logger.propagate = False
            self.logger.setLevel(logging.INFO)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        start = time.perf_counter()
        response = self.get_response(request)
        fields = access_log_fields(
            normalize_method(request.method),
            route_of(request),
            request.path,
            response.status_code,
            (time.perf_counter() - start) * 1000.0,
            user_id_of(request),
        )
        fields["request_id"] = getattr(request, "request_id", None)
        self.logger.info("http_request", extra=fields)
        return response
