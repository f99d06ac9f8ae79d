"""SigV4 signing of OTLP exports, to send spans straight to X-Ray's OTLP endpoint without a collector.

The credentials come from botocore's chain (environment, profile, container or instance role), refreshed
by botocore when they are temporary. Needs the ``aws`` extra.
"""

from __future__ import annotations

import os
from typing import Any

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.session import Session, get_session

#: The SigV4 service name of X-Ray's OTLP endpoint.
SERVICE = "xray"

#: The request headers that are signed (the exporter sets ``Content-Type``; SigV4 adds its own).
SIGNED_HEADERS = ("Content-Type", "Content-Encoding")


def botocore_region(session: Session | None = None) -> str | None:
    """``AWS_REGION`` (set by ECS, Lambda), else botocore's (``AWS_DEFAULT_REGION``, the profile), or ``None``."""
    region = os.environ.get("AWS_REGION") or (session or get_session()).get_config_variable("region")
    return str(region) if region else None


class SigV4RequestsAuth(requests.auth.AuthBase):
    """A requests auth hook that signs each request with SigV4, as AWS's OTLP endpoints (X-Ray, CloudWatch) require."""

    def __init__(self, region: str, session: Session | None = None, service: str = SERVICE) -> None:
        self.region = region
        self.service = service
        self._session = session or get_session()

    def __call__(self, request: Any) -> Any:
        credentials = self._session.get_credentials()
        if credentials is None:
            # Sent unsigned: the endpoint refuses it and the exporter's one warning says so.
            return request
        headers = {name: request.headers[name] for name in SIGNED_HEADERS if name in request.headers}
        signed = AWSRequest(method=request.method, url=request.url, data=request.body or b"", headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), self.service, self.region).add_auth(signed)
        for name, value in signed.headers.items():
            request.headers[name] = value
        return request


def signing_session(region: str, service: str = SERVICE) -> requests.Session:
    """A requests session whose every request is SigV4-signed for ``region`` (and ``service``: CloudWatch's
    OTLP metrics endpoint is ``monitoring``)."""
    session = requests.Session()
    session.auth = SigV4RequestsAuth(region, service=service)
    return session
