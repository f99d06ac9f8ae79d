"""Readiness probes coalesced: a flood of probes costs one run of the checks per interval.

Probes that arrive while the checks run wait for that run instead of starting their own, and its report is
reused for ``HEALTH_CHECK_REUSE_SECONDS`` (1 s by default; 0 runs the checks for every probe that does not
find a run in flight). Without this, every anonymous probe opens a database connection and a thread per check.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from django_prodkit.conf import get_config
from django_prodkit.health.probes import ReadinessReport, run_readiness_checks

#: A follower waits this long beyond the checks' own timeout for the run it joined (which is bounded by it).
FOLLOWER_GRACE_SECONDS = 5.0


@dataclass
class _Shared:
    # The configuration the report was made under: a settings change must not be answered from before it.
    config: Mapping[str, Any]
    future: Future[ReadinessReport]
    expires: float = float("inf")


_lock = threading.Lock()
_latest: _Shared | None = None


def readiness_report() -> ReadinessReport:
    """The readiness report: reused while fresh, shared while running, else run now by this caller."""
    global _latest
    config = get_config()
    with _lock:
        shared = _latest
        usable = shared is not None and shared.config is config and time.monotonic() < shared.expires
        if shared is not None and usable:
            leader = False
        else:
            shared = _latest = _Shared(config, Future())
            leader = True
    if not leader:
        return shared.future.result(timeout=float(config["HEALTH_CHECK_TIMEOUT"]) + FOLLOWER_GRACE_SECONDS)
    try:
        report = run_readiness_checks()
    except BaseException as exc:
        with _lock:
            shared.expires = 0.0  # nothing to reuse: the next probe runs the checks again
        shared.future.set_exception(exc)
        raise
    with _lock:
        shared.expires = time.monotonic() + float(config["HEALTH_CHECK_REUSE_SECONDS"])
    shared.future.set_result(report)
    return report


@receiver(setting_changed)
def _on_setting_changed(**kwargs: Any) -> None:
    # Any setting may change what the checks see (DATABASES, CACHES ...): never answer from before the change.
    global _latest
    with _lock:
        _latest = None
