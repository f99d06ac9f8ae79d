"""The two objectives the rule files here were generated from, and the promtool scenarios that test them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules.yml"
ALERT_TESTS = HERE / "alerts_test.yml"
SERVICE = "blog"
OBJECTIVES: list[dict[str, Any]] = [
    {"NAME": "api-availability", "KIND": "availability", "TARGET": 99.9},
    {
        "NAME": "items-latency",
        "KIND": "latency",
        "TARGET": 99,
        "THRESHOLD_MS": 350,
        "ROUTES": ["/api/v1/items/<slug:slug>/"],
        "METHODS": ["GET"],
    },
]
#: The ``PRODKIT`` the rule files come from.
PRODKIT: dict[str, Any] = {"SERVICE_NAME": SERVICE, "OBJECTIVES": OBJECTIVES}


def rules_text() -> str:
    """``rules.yml`` as the generator writes it today (default buckets, default settings otherwise)."""
    from django_prodkit.conf import DEFAULTS
    from django_prodkit.metrics.store import default_buckets
    from django_prodkit.objectives.declaration import declare
    from django_prodkit.objectives.documents import to_yaml
    from django_prodkit.objectives.prometheus import rule_file

    declaration, _problems = declare({**DEFAULTS, **PRODKIT}, default_buckets())
    return to_yaml(rule_file(declaration))
