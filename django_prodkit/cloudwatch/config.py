"""The ``PRODKIT["CLOUDWATCH"]`` settings, resolved once into a typed object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django_prodkit.conf import get_config

MODES = ("emf", "api")
#: CloudWatch allows 30 dimensions per metric; Service, Endpoint and Method take three.
MAX_EXTRA_DIMENSIONS = 27
RESERVED_DIMENSIONS = frozenset({"Service", "Endpoint", "Method", "Task"})
SERVICE_DIMENSION = "Service"
ENDPOINT_DIMENSION = "Endpoint"
METHOD_DIMENSION = "Method"
TASK_DIMENSION = "Task"
#: CloudWatch's longest dimension value.
MAX_DIMENSION_VALUE = 1024


@dataclass(frozen=True)
class CloudWatchSettings:
    """Everything the publishers need, read from the configuration once per process."""

    enabled: bool
    mode: str
    namespace: str
    service: str
    flush_interval: float
    dimensions: tuple[tuple[str, str], ...]
    buffer_size: int
    logger: str | None
    region: str | None
    endpoint_url: str | None
    api_timeout: float = 5.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None = None) -> CloudWatchSettings:
        """Build from :func:`~django_prodkit.conf.get_config` (or the given configuration)."""
        config = get_config() if config is None else config
        cw = config["CLOUDWATCH"]
        return cls(
            enabled=cw["ENABLED"],
            mode=cw["MODE"],
            namespace=cw["NAMESPACE"],
            service=cw["SERVICE_NAME"] or config["SERVICE_NAME"],
            flush_interval=float(cw["FLUSH_INTERVAL"]),
            dimensions=tuple(sorted((cw["DIMENSIONS"] or {}).items())),
            buffer_size=cw["BUFFER_SIZE"],
            logger=cw["LOGGER"],
            region=cw["REGION"],
            endpoint_url=cw["ENDPOINT_URL"],
            api_timeout=float(cw["API_TIMEOUT"]),
        )

    @property
    def service_dimensions(self) -> list[tuple[str, str]]:
        """The dimensions on every metric: the service and the extra ones."""
        return [(SERVICE_DIMENSION, self.service[:MAX_DIMENSION_VALUE]), *self.dimensions]


def task_dimensions(task: str) -> list[tuple[str, str]]:
    """The per-task dimension (the task name, bounded to CloudWatch's length limit)."""
    return [(TASK_DIMENSION, task[:MAX_DIMENSION_VALUE] or "<unknown>")]


def endpoint_dimensions(route: str, method: str) -> list[tuple[str, str]]:
    """The per-endpoint dimensions (route pattern, bounded to CloudWatch's length limit, and method)."""
    return [(ENDPOINT_DIMENSION, route[:MAX_DIMENSION_VALUE] or "/"), (METHOD_DIMENSION, method)]
