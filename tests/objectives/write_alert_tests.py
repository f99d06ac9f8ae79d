"""Write ``alerts_test.yml``: ``promtool test rules`` scenarios for every alert of ``rules.yml``.

Run from the repository root after changing the rules (``python -m tests.objectives.write_alert_tests``); it
writes the scenarios, lets promtool render the alerts' annotations once, and keeps what promtool rendered as the
expected text after a reviewer has read it (``git diff``). The timings asserted are the SRE workbook's, for a
28-day window: a burn rate ``b`` against a threshold ``f`` over a long window ``L`` fires after ``L * f / b``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

from django_prodkit.objectives.documents import to_yaml
from tests.objectives import ALERT_TESTS, RULES, SERVICE, rules_text

BASELINE = 3 * 24 * 60  # minutes of clean traffic first, so every window is full before the burn starts
# Integer counts per step keep promtool's running sums exact: a float sum that lands a hair above the next
# segment's start reads as a counter reset.
PER_MINUTE = 10000
AVAILABILITY = {"slo": "api-availability", "slo_kind": "availability", "budget": 0.001}
LATENCY = {"slo": "items-latency", "slo_kind": "latency", "budget": 0.01}
ITEMS = "/api/v1/items/<slug:slug>/"


def counter(rates: list[tuple[int, float]]) -> str:
    """A cumulative counter as promtool series notation from (minutes, increase per minute) segments."""
    parts: list[str] = []
    value = 0.0
    first = True
    for minutes, rate in rates:
        start = value if first else value + rate
        steps = minutes if first else minutes - 1
        # promtool reads "+0x59" as a hexadecimal number: a zero rate is written "0.0".
        parts.append(f"{start:.12g}+{rate:.12g}x{steps}".replace("+0x", "+0.0x"))
        value = start + rate * steps
        first = False
    return " ".join(parts)


def series(
    kind: dict[str, Any], bad: list[tuple[int, float]], total: list[tuple[int, float]], client_errors: bool = True
) -> list[dict[str, str]]:
    """Input series: per step ``total`` requests of which ``bad`` are errors (or slow), and as many 404s."""
    good = [(m, t - b) for (m, t), (_, b) in zip(total, bad, strict=True)]
    if kind is AVAILABILITY:
        labels = 'method="GET", route="/api/v1/hello/"'
        # 404s are the client's mistake: they never count against the availability objective.
        client = bad if client_errors else [(m, 0.0) for m, _ in bad]
        good = [(m, t - b - c) for (m, t), (_, b), (_, c) in zip(total, bad, client, strict=True)]
        return [
            {"series": f'prodkit_http_requests_total{{{labels}, status="200"}}', "values": counter(good)},
            {"series": f'prodkit_http_requests_total{{{labels}, status="500"}}', "values": counter(bad)},
            {"series": f'prodkit_http_requests_total{{{labels}, status="404"}}', "values": counter(client)},
        ]
    labels = f'method="GET", route="{ITEMS}"'
    slow_elsewhere = [(m, t) for m, t in total]
    return [
        {"series": f'prodkit_http_request_duration_seconds_bucket{{{labels}, le="0.35"}}', "values": counter(good)},
        {"series": f"prodkit_http_request_duration_seconds_count{{{labels}}}", "values": counter(total)},
        # Another route, every request slow: outside the objective's route group, so it never counts.
        {
            "series": 'prodkit_http_request_duration_seconds_count{method="GET", route="/api/v1/slow/"}',
            "values": counter(slow_elsewhere),
        },
    ]


def alert(kind: dict[str, Any], severity: str) -> dict[str, Any]:
    labels = {"service": SERVICE, "slo": kind["slo"], "slo_kind": kind["slo_kind"], "severity": severity}
    return {"exp_labels": labels}


def scenario(
    kind: dict[str, Any],
    name: str,
    burn: float,
    burn_minutes: int,
    after_minutes: int,
    checks: list[tuple[int, list[str]]],
    step: int = 2,
) -> dict[str, Any]:
    """A baseline, ``burn`` times the budget for ``burn_minutes``, then clean again; checks at minutes after the start.

    Samples every ``step`` minutes: 2 leaves the 5m window at least two samples for ``rate``; 10 for the ticket
    scenarios, whose shortest window is 2 hours (it keeps promtool's run short; their page windows then see too
    few samples, which the 2-minute scenarios cover).
    """
    per_step = PER_MINUTE * step
    bad = [
        (BASELINE // step, 0.0),
        (burn_minutes // step, burn * kind["budget"] * per_step),
        (after_minutes // step, 0.0),
    ]
    total = [(BASELINE // step, per_step), (burn_minutes // step, per_step), (after_minutes // step, per_step)]
    return {
        "name": f"{kind['slo']}: {name}",
        "interval": f"{step}m",
        "input_series": series(kind, bad, total),
        "alert_rule_test": [
            {
                "eval_time": f"{BASELINE + minute}m",
                "alertname": "ErrorBudgetBurn",
                "exp_alerts": [alert(kind, severity) for severity in firing],
            }
            for minute, firing in checks
        ],
    }


def quiet_night(kind: dict[str, Any]) -> dict[str, Any]:
    """Daytime traffic, then a night of 2 requests an hour, one of which fails: nothing fires."""
    step = 2
    night: list[tuple[int, float]] = [(BASELINE // step, PER_MINUTE * step)]
    bad: list[tuple[int, float]] = [(BASELINE // step, 0.0)]
    for half_hour in range(16):
        night += [(30 // step - 1, 0.0), (1, 1.0)]
        bad += [(30 // step - 1, 0.0), (1, 1.0 if half_hour == 6 else 0.0)]
    return {
        "name": f"{kind['slo']}: a quiet night with 2 requests an hour and one error does not page",
        "interval": f"{step}m",
        "input_series": series(kind, bad, night, client_errors=False),
        "alert_rule_test": [
            {"eval_time": f"{BASELINE + minute}m", "alertname": "ErrorBudgetBurn", "exp_alerts": []}
            for minute in (210, 220, 240, 270, 300, 420)
        ],
    }


def tests() -> list[dict[str, Any]]:
    groups = []
    for kind in (AVAILABILITY, LATENCY):
        groups += [
            # 14.4x: the 1h window passes 13.44x after 56 min; 5 min after the errors stop the 5m window clears.
            scenario(
                kind,
                "14.4x pages within an hour and resolves",
                14.4,
                120,
                60,
                [
                    (50, []),
                    (60, ["page"]),
                    (120, ["page"]),
                    (130, []),
                ],
            ),
            # 6x: the 6h window passes 5.6x after 5.6 h.
            scenario(
                kind,
                "6x pages within 6 hours",
                6,
                7 * 60,
                60,
                [
                    (5 * 60, []),
                    (6 * 60, ["page"]),
                    (7 * 60 + 40, []),
                ],
            ),
            # 3x: the 1d window (and the 3d one) passes its threshold after 22.4 h; a ticket, never a page.
            # Resolved once the 6h window drops below 0.93x, about 4 hours after the errors stop.
            scenario(
                kind,
                "3x opens a ticket within a day and resolves",
                3,
                25 * 60,
                6 * 60,
                [
                    (20 * 60, []),
                    (24 * 60, ["ticket"]),
                    (25 * 60 + 300, []),
                ],
                step=10,
            ),
            # 1x: the 3d window passes 0.9333x after 67.2 h.
            scenario(
                kind,
                "1x opens a ticket within 3 days and resolves",
                1,
                72 * 60,
                2 * 60,
                [
                    (60 * 60, []),
                    (72 * 60, ["ticket"]),
                    (72 * 60 + 60, []),
                ],
                step=10,
            ),
            # 0.9x spends less than the whole budget in the window: nothing, ever.
            scenario(
                kind,
                "0.9x never fires",
                0.9,
                80 * 60,
                10,
                [
                    (24 * 60, []),
                    (72 * 60, []),
                    (80 * 60, []),
                ],
                step=10,
            ),
            quiet_night(kind),
        ]
    return groups


def _minutes(duration: str) -> int:
    units = {"d": 1440, "h": 60, "m": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([dhm])", duration))


def render_annotations(document: dict[str, Any]) -> None:
    """Run promtool once and take the annotations it rendered for each expected alert."""
    ALERT_TESTS.write_text(to_yaml(document))
    result = subprocess.run(
        ["promtool", "test", "rules", str(ALERT_TESTS)], capture_output=True, text=True, check=False
    )
    rendered: dict[tuple[str, int, str], dict[str, str]] = {}
    for block in (result.stdout + result.stderr).split("    name: ")[1:]:
        name = block.split(",\n", 1)[0]
        time = _minutes(re.search(r"time: (\w+),", block).group(1))  # type: ignore[union-attr]
        got = block.split("got:", 1)[1]
        for labels, text in re.findall(r"Labels:\{(.*?)\}\s*Annotations:\{(.*?)\}\n", got):
            severity = re.search(r'severity="(\w+)"', labels).group(1)  # type: ignore[union-attr]
            values = re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', text)
            rendered[(name, time, severity)] = {k: json.loads(f'"{v}"') for k, v in values}
    for group in document["tests"]:
        for check in group["alert_rule_test"]:
            for expected in check["exp_alerts"]:
                key = (group["name"], _minutes(check["eval_time"]), expected["exp_labels"]["severity"])
                if key not in rendered:
                    sys.exit(f"promtool did not render {key}:\n{result.stdout}{result.stderr}")
                expected["exp_annotations"] = rendered[key]


def main() -> None:
    RULES.write_text(rules_text())
    document = {"rule_files": [RULES.name], "evaluation_interval": "10m", "tests": tests()}
    render_annotations(document)
    ALERT_TESTS.write_text(to_yaml(document))


if __name__ == "__main__":
    main()
