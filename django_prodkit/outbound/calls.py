"""What every instrumented client does around a call: add the headers, start and end the CLIENT span.

Nothing here may change what the call does: a failure of the instrumentation itself is logged once and the
call goes on as if it were not instrumented; the call's own exception reaches the caller unchanged.
Headers are written only to hosts ``PROPAGATE_OUTBOUND_HOSTS`` allows (Django's ``ALLOWED_HOSTS``
patterns: ``"*"``, ``".example.com"``, ``"api.example.com"``); calls to other hosts still get a span.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.http.request import validate_host

from django_prodkit.conf import get_config
from django_prodkit.context.http import normalize_method
from django_prodkit.context.ids import get_request_id
from django_prodkit.tracing.base import NOOP_SPAN, AttributeValue, Span

#: URLs in span attributes are cut to this length (they may carry ids from user input).
MAX_URL_LENGTH = 2048

logger = logging.getLogger("django_prodkit.outbound")

#: Set while an instrumented call is in progress, so a client built on another one (requests on urllib3)
#: or a client retrying through itself makes one span, not several.
in_call: ContextVar[bool] = ContextVar("prodkit_outbound_call", default=False)


def enabled(client: str) -> bool:
    """Whether ``client`` is in ``PROPAGATE_OUTBOUND`` now (so ``override_settings`` works in tests)."""
    return client in get_config()["PROPAGATE_OUTBOUND"]


def _url_attributes(url: str) -> dict[str, AttributeValue]:
    # No query string (tokens, personal data) and no user:password.
    parts = urlsplit(url)
    host = parts.hostname or ""
    attributes: dict[str, AttributeValue] = {
        "url.full": urlunsplit(
            (parts.scheme, host if parts.port is None else f"{host}:{parts.port}", parts.path, "", "")
        )[:MAX_URL_LENGTH],
        "server.address": host,
    }
    if parts.port is not None:
        attributes["server.port"] = parts.port
    return attributes


def host_allowed(host: str, patterns: list[str]) -> bool:
    """Whether calls to ``host`` may carry the request id and trace headers (``PROPAGATE_OUTBOUND_HOSTS``)."""
    return "*" in patterns or validate_host(host.lower(), patterns)


def start_call(method: str, url: str, headers: MutableMapping[str, Any]) -> Span:
    """Add ``X-Request-ID`` (and, with tracing on, the trace headers) to ``headers``; start the CLIENT span.

    ``headers`` must be case-insensitive (the clients' own header types are): a header the caller set, in
    any case, is kept and never sent twice.
    """
    config = get_config()
    attributes = _url_attributes(url)
    propagate = host_allowed(str(attributes["server.address"]), config["PROPAGATE_OUTBOUND_HOSTS"])
    request_id = get_request_id()
    if request_id is not None and propagate:
        header = config["REQUEST_ID_HEADER"]
        if header not in headers:
            headers[header] = request_id
    if not (config["OTEL"]["ENABLED"] or config["XRAY"]["ENABLED"]):
        return NOOP_SPAN
    from django_prodkit.tracing.backend import get_tracer

    tracer = get_tracer()
    if tracer is None:
        return NOOP_SPAN
    name = normalize_method(method.upper())
    span = tracer.start_span(name, "client", attributes={"http.request.method": name, **attributes})
    if propagate:
        tracer.inject(headers)
    return span


def end_call(span: Span, status: int | None, exception: BaseException | None = None) -> None:
    """Record the response status (or the exception) and end the span; 5xx and exceptions are errors."""
    if status is not None:
        span.set_attribute("http.response.status_code", status)
    if exception is not None:
        span.set_attribute("error.type", type(exception).__qualname__)
        span.record_exception(exception)
    span.end(error=exception is not None or (status is not None and status >= 500))


class OutboundCall:
    """One instrumented call: the headers added and the span started on creation, ended on leaving the block.

    ``with OutboundCall(method, url, headers) as call: ...; call.status = <status>``; an exception leaving the
    block is recorded on the span and propagates unchanged. While the block runs, ``in_call`` is set.
    """

    _warned = False

    def __init__(self, method: str, url: str, headers: MutableMapping[str, Any]) -> None:
        self.status: int | None = None
        self._token: Token[bool] | None = None
        try:
            self.span = start_call(method, url, headers)
        except Exception:
            self._warn("could not add the outbound headers or start the span")
            self.span = NOOP_SPAN

    def __enter__(self) -> OutboundCall:
        self._token = in_call.set(True)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._token is not None:
            in_call.reset(self._token)
        try:
            end_call(self.span, None if exc is not None else self.status, exc)
        except Exception:
            self._warn("could not end the span")

    @classmethod
    def _warn(cls, message: str) -> None:
        if not cls._warned:
            cls._warned = True
            logger.warning("Outbound call instrumentation: %s; the call goes on untraced.", message)
