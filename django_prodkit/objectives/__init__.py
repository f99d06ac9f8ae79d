"""Service level objectives: one declaration in ``PRODKIT["OBJECTIVES"]``, rules and alarms for each backend."""

from __future__ import annotations

from collections.abc import Sequence

from django_prodkit.conf import get_config
from django_prodkit.objectives.declaration import Declaration, Objective, Problem, declare

__all__ = ["Declaration", "Objective", "Problem", "load"]


def load() -> tuple[Declaration, list[Problem]]:
    """The declaration in the settings, against the configured histogram buckets, and its problems."""
    config = get_config()
    buckets: Sequence[float] = ()
    if config["OBJECTIVES"]:
        # Imported here: the store imports prometheus_client, which must wait for PROMETHEUS_MULTIPROC_DIR.
        from django_prodkit.metrics.store import configured_buckets

        buckets = configured_buckets()
    return declare(config, buckets)
