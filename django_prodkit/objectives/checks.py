"""System checks for the declared objectives: registered by ``django_prodkit.checks.register_all``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from django_prodkit.objectives import load

CHECK_IDS: dict[str, str] = {
    "prodkit.E130": "An OBJECTIVES entry is not a dict or has an unknown key.",
    "prodkit.E131": "An objective's NAME is missing, not a slug, or used twice.",
    "prodkit.E132": "An objective's KIND is neither 'availability' nor 'latency'.",
    "prodkit.E133": "An objective's TARGET is not a percentage between 0 and 100.",
    "prodkit.E134": "An objective's ROUTES or METHODS is not a list of route patterns or methods.",
    "prodkit.E135": "An availability objective's ERRORS is not a list of status classes or codes.",
    "prodkit.E136": "A latency objective's THRESHOLD_MS is missing, not positive, or below the lowest bucket.",
    "prodkit.E137": "OBJECTIVES_MIN_REQUESTS is negative.",
    "prodkit.E138": "OBJECTIVES_WINDOW_DAYS is not 28 or 30.",
    "prodkit.E139": "OBJECTIVES_SELECTOR is not a list of Prometheus label matchers.",
    "prodkit.W130": "A latency objective's THRESHOLD_MS is not a histogram bucket edge; the edge below is used.",
    "prodkit.W131": "An objective's TARGET is so low that one of its alerts can never fire.",
}


def check_objectives(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every problem of the declaration, with its hint."""
    try:
        _declaration, problems = load()
    except ImproperlyConfigured:
        return []  # prodkit.E002/E003 report it.
    return [
        (checks.Error if problem.is_error else checks.Warning)(problem.message, hint=problem.hint, id=problem.id)
        for problem in problems
    ]


def register() -> None:
    """Register the objectives checks (called from ``django_prodkit.checks.register_all``)."""
    checks.register(check_objectives, "prodkit")
