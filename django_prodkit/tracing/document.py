"""A request's X-Ray segment document, written straight to JSON text (no tracing SDK imported here).

Building aws-xray-sdk's ``Segment`` and serialising it through its generic ``to_dict()`` costs more than
the rest of the middleware, so a request whose segment nothing else touched is written here directly.
When something did touch the SDK's segment (a patched library's subsegment, an exception, the view's own
annotations), ``traces.py`` copies this document's request fields onto that object and the SDK serialises
it; a test compares the two documents field by field.
"""

from __future__ import annotations

import json
import re
from json.encoder import encode_basestring_ascii
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from django_prodkit.context.http import KNOWN_METHODS, OTHER_METHOD, route_of, user_id_of
from django_prodkit.context.ids import get_request_id

#: Request values written into a segment are cut to these lengths (they come from the client).
MAX_URL_LENGTH = 2048
MAX_HEADER_VALUE_LENGTH = 512
MAX_HOST_LENGTH = 255

# Django's own host syntax (``django.http.request.host_validation_re``); other values are not written.
_HOST = re.compile(r"([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(:[0-9]+)?", re.IGNORECASE | re.ASCII)
_DEFAULT_PORTS = {"http": "80", "https": "443"}

_quote = encode_basestring_ascii
_compact = json.JSONEncoder(separators=(",", ":"), default=str).encode


def _host(meta: dict[str, Any], scheme: str) -> str:
    # request.get_host() also checks ALLOWED_HOSTS, at several times the cost of the rest; a host Django
    # refuses gets a 400 anyway, so only its syntax is checked here, else the server's own name is used.
    host = meta.get("HTTP_X_FORWARDED_HOST")
    if not host or not settings.USE_X_FORWARDED_HOST:
        host = meta.get("HTTP_HOST")
    if host and len(host) <= MAX_HOST_LENGTH and _HOST.fullmatch(host):
        return str(host)
    name = str(meta.get("SERVER_NAME", ""))[:MAX_HOST_LENGTH]
    port = str(meta.get("SERVER_PORT", ""))
    return name if not port.isdigit() or port == _DEFAULT_PORTS.get(scheme) else f"{name}:{port}"


def request_host(request: HttpRequest) -> str:
    """The host the client addressed, checked for syntax only (bounded), else the server's name."""
    return _host(request.META, request.scheme or "http")


def request_url(request: HttpRequest) -> str:
    """The request's URL without its query string, as the client addressed it (bounded)."""
    scheme = request.scheme or "http"
    return f"{scheme}://{_host(request.META, scheme)}{request.path}"[:MAX_URL_LENGTH]


def _status_flags(status: int) -> str:
    # The error/fault/throttle members exactly as aws-xray-sdk's Entity.apply_status_code sets them.
    if status >= 500:
        return ',"fault":true'
    if status == 429:
        return ',"throttle":true,"error":true'
    if status >= 400:
        return ',"error":true'
    return ""


def render_segment(
    request: HttpRequest,
    response: HttpResponseBase,
    ids: tuple[str, str, str | None],
    start_time: float,
    end_time: float,
    tail: str,
    metadata: dict[str, Any] | None = None,
) -> str:
    """The JSON document of the segment of ``request``; never forces a query.

    ``ids`` are the segment's id, its trace id and its parent's id (hex, checked by the header parser);
    ``tail`` holds the members every segment shares and the closing brace (``,"name":...}``);
    ``metadata`` goes into the ``default`` metadata namespace, as the SDK's ``put_metadata`` puts it. What comes
    from the client is bounded and escaped; the method is one of :data:`KNOWN_METHODS` or ``OTHER``.
    """
    segment_id, trace_id, parent_id = ids
    meta = request.META
    method = request.method
    parts = [
        f'{{"id":"{segment_id}","trace_id":"{trace_id}","start_time":{start_time!r},"end_time":{end_time!r}'
        f',"in_progress":false,"http":{{"request":{{"method":"{method if method in KNOWN_METHODS else OTHER_METHOD}"'
        f',"url":{_quote(request_url(request))}'
    ]
    agent = meta.get("HTTP_USER_AGENT")
    if agent:
        parts.append(f',"user_agent":{_quote(str(agent)[:MAX_HEADER_VALUE_LENGTH])}')
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    client_ip = str(forwarded).split(",", 1)[0].strip() if forwarded else meta.get("REMOTE_ADDR")
    if client_ip:
        parts.append(f',"client_ip":{_quote(str(client_ip)[:MAX_HEADER_VALUE_LENGTH])}')
    if forwarded:
        parts.append(',"x_forwarded_for":true')
    status = int(response.status_code)
    length = response.headers.get("Content-Length")
    if length is not None and length.isascii() and length.isdigit():
        parts.append(f'}},"response":{{"status":{status},"content_length":{int(length)}}}}}')
    else:
        parts.append(f'}},"response":{{"status":{status}}}}}')
    parts.append(f',"annotations":{{"route":{_quote(route_of(request))}')
    request_id = getattr(request, "request_id", None) or get_request_id()
    if request_id:
        parts.append(f',"request_id":{_quote(str(request_id))}')
    parts.append("}")
    if parent_id:
        parts.append(f',"parent_id":"{parent_id}"')
    user_id = user_id_of(request)
    if user_id is not None:
        parts.append(f',"user":{_quote(str(user_id))}')
    parts.append(_status_flags(status))
    if metadata:
        parts.append(f',"metadata":{{"default":{_compact(metadata)}}}')
    parts.append(tail)
    return "".join(parts)
