"""The request id on the wire: read from the request's header, echoed on the response, exposed to browsers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_vary_headers

from django_prodkit.context.ids import generate_request_id, is_valid_request_id
from django_prodkit.request_id.streaming import aiterate_with_request_id, iterate_with_request_id

EXPOSE_HEADERS = "Access-Control-Expose-Headers"

# Only cross-origin requests carry Origin, and only their responses need the expose header.
_ORIGIN_META_KEY = "HTTP_ORIGIN"
_VARY_ORIGIN = ("Origin",)


def meta_key(header: str) -> str:
    """The ``request.META`` key of an HTTP header name."""
    return "HTTP_" + header.upper().replace("-", "_")


def _bind_stream(response: Any, request_id: str) -> None:
    content = response.streaming_content
    if response.is_async:
        response.streaming_content = aiterate_with_request_id(content, request_id)
    else:
        response.streaming_content = iterate_with_request_id(content, request_id)


class RequestIDHeaders:
    """``RequestIDMiddleware``'s work on each request and response, configured once from ``PRODKIT``."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.header = config["REQUEST_ID_HEADER"]
        self.meta_key = meta_key(self.header)
        self.trust_incoming = config["REQUEST_ID_TRUST_INCOMING"]
        self.expose = config["REQUEST_ID_EXPOSE_HEADER"]

    def request_id(self, request: HttpRequest) -> str:
        """The id: a valid incoming one when trusted, else new; also set as ``request.request_id``."""
        incoming = request.META.get(self.meta_key)
        if incoming is not None and self.trust_incoming and is_valid_request_id(incoming):
            request_id: str = incoming
        else:
            request_id = generate_request_id()
        request.request_id = request_id  # type: ignore[attr-defined]
        return request_id

    def add_to(self, request: HttpRequest, response: HttpResponseBase, request_id: str) -> None:
        """Echo the id on the response (and keep it current while a streamed body is produced)."""
        response[self.header] = request_id
        if response.streaming and getattr(response, "file_to_stream", None) is None:
            # The body is produced after this middleware returns; keep the id current while it is.
            _bind_stream(response, request_id)
        if not self.expose:
            return
        # Whether the expose header is sent depends on Origin: a shared cache must keep the two answers apart.
        if "Vary" in response:
            patch_vary_headers(response, _VARY_ORIGIN)
        else:
            response["Vary"] = "Origin"
        if _ORIGIN_META_KEY not in request.META:
            return
        exposed = response.get(EXPOSE_HEADERS)
        if not exposed:
            response[EXPOSE_HEADERS] = self.header
        elif self.header.lower() not in (name.strip().lower() for name in exposed.split(",")):
            response[EXPOSE_HEADERS] = f"{exposed}, {self.header}"
