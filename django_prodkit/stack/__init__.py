"""Where our middleware sits in ``settings.MIDDLEWARE``, found by class so that subclasses count too.

``class MyMetrics(MetricsMiddleware)`` listed as ``"myproject.middleware.MyMetrics"`` is a MetricsMiddleware
for the checks and for ``HealthCheckMiddleware``'s counting: each entry is resolved with ``import_string``
(once per dotted path) and compared with ``issubclass``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from django.conf import settings
from django.utils.module_loading import import_string


@functools.lru_cache(maxsize=256)
def _resolve(dotted_path: str) -> type | None:
    try:
        found = import_string(dotted_path)
    except ImportError:
        return None  # Django reports an entry it cannot import when it builds the stack.
    return found if isinstance(found, type) else None


def installed_middleware() -> list[str]:
    """``settings.MIDDLEWARE`` as a list (empty when unset)."""
    return list(getattr(settings, "MIDDLEWARE", None) or [])


def is_kind(entry: str, base_path: str) -> bool:
    """Whether the ``MIDDLEWARE`` entry is the class at ``base_path`` or a subclass of it."""
    if entry == base_path:
        return True
    found, base = _resolve(entry), _resolve(base_path)
    return found is not None and base is not None and issubclass(found, base)


def index_of(base_path: str, middleware: Sequence[str] | None = None) -> int | None:
    """The position of the first entry that is ``base_path`` or a subclass of it, or ``None``."""
    entries = installed_middleware() if middleware is None else middleware
    for position, entry in enumerate(entries):
        if is_kind(entry, base_path):
            return position
    return None
