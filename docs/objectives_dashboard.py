"""Draw ``docs/_static/objectives-dashboard.svg``, the Objectives page's picture of the Grafana dashboard.

There is no Grafana here, so the panels are drawn from their own data, in the benchmark charts' style:

- ``python docs/objectives_dashboard.py --prometheus http://127.0.0.1:9090 --minutes 3`` runs every panel's query of
  ``manage.py prodkit_monitoring grafana`` (the tests' two objectives) over the last minutes against a Prometheus
  that scrapes the app, and saves the answers to ``docs/_static/objectives-dashboard.json``;
- ``python docs/objectives_dashboard.py`` draws the SVG from that file (``tests/test_objectives.py`` checks the
  committed picture is what the committed data gives).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
import urllib.request
from html import escape
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
DATA = DOCS / "_static" / "objectives-dashboard.json"
OUTPUT = DOCS / "_static" / "objectives-dashboard.svg"
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
COLORS = ("#2f6f9f", "#d9822b", "#3a9a5b", "#b33a3a", "#7a5ea8", "#8a8d91")
COLUMNS, PANEL_W, PANEL_H, GAP = 3, 300, 170, 12
PLOT_TOP, PLOT_LEFT, PLOT_BOTTOM = 30, 44, 40
MAX_SERIES = 4


def collect(prometheus: str, minutes: float, rate_window: str) -> dict[str, Any]:
    """Every panel's series over the last ``minutes``, from a Prometheus at ``prometheus``."""
    sys.path.insert(0, str(DOCS.parent))
    import django
    from django.conf import settings

    from tests.objectives import PRODKIT

    settings.configure(INSTALLED_APPS=["django_prodkit"], PRODKIT=PRODKIT)
    django.setup()
    from django_prodkit.objectives import load
    from django_prodkit.objectives.grafana import RATE, panels

    if not prometheus.startswith(("http://", "https://")):
        raise SystemExit(f"--prometheus {prometheus!r} is not an http(s) URL")
    declaration, _ = load()
    end = time.time()
    result = []
    for panel in panels(declaration):
        series = []
        for expr, legend in panel.queries:
            params = {
                "query": expr.replace(RATE, rate_window),
                "start": end - minutes * 60,
                "end": end,
                "step": 2,
            }
            url = f"{prometheus}/api/v1/query_range?{urllib.parse.urlencode(params)}"
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (http(s) checked above)
                answer = json.load(response)["data"]["result"]
            for item in answer:
                label = legend
                for name, value in item["metric"].items():
                    label = label.replace("{{" + name + "}}", value)
                points = [[round(t - end, 1), float(v)] for t, v in item["values"] if v not in ("NaN", "+Inf")]
                series.append({"label": label, "points": points})
        result.append({"title": panel.title, "unit": panel.unit, "series": series[:MAX_SERIES]})
    return {"minutes": minutes, "panels": result}


def _number(value: float, unit: str) -> str:
    if unit == "percentunit":
        return f"{value * 100:.3g}%"
    if unit == "s":
        return f"{value * 1000:.3g} ms"
    return f"{value:.3g}"


def _panel(panel: dict[str, Any], x: int, y: int, minutes: float) -> list[str]:
    parts = [
        f'<rect x="{x}" y="{y}" width="{PANEL_W}" height="{PANEL_H}" rx="4" fill="#181b1f"/>',
        f'<text x="{x + 8}" y="{y + 18}" style="{FONT};font-size:11px;font-weight:600" fill="#d8d9da">'
        f"{escape(panel['title'][:52])}</text>",
    ]
    values = [v for s in panel["series"] for _, v in s["points"]]
    if not values:
        parts.append(
            f'<text x="{x + PANEL_W / 2}" y="{y + PANEL_H / 2}" style="{FONT};font-size:12px" '
            f'fill="#8e8e8e" text-anchor="middle">No data</text>'
        )
        return parts
    low, high = min(0.0, min(values)), max(values)
    high = high if high > low else low + 1.0
    left, top = x + PLOT_LEFT, y + PLOT_TOP
    width, height = PANEL_W - PLOT_LEFT - 10, PANEL_H - PLOT_TOP - PLOT_BOTTOM
    for fraction in (0.0, 0.5, 1.0):
        gy = top + height * (1 - fraction)
        parts.append(f'<line x1="{left}" y1="{gy:.1f}" x2="{left + width}" y2="{gy:.1f}" stroke="#2c3235"/>')
        parts.append(
            f'<text x="{left - 4}" y="{gy + 3:.1f}" style="{FONT};font-size:9px" fill="#8e8e8e" '
            f'text-anchor="end">{escape(_number(low + (high - low) * fraction, panel["unit"]))}</text>'
        )
    span = minutes * 60
    for index, series in enumerate(panel["series"]):
        color = COLORS[index % len(COLORS)]
        points = " ".join(
            f"{left + width * (1 + t / span):.1f},{top + height * (1 - (v - low) / (high - low)):.1f}"
            for t, v in series["points"]
        )
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="1.5"/>')
        ly = y + PANEL_H - 26 + 12 * (index % 2)
        lx = x + 8 + (PANEL_W // 2 - 4) * (index // 2)
        parts.append(f'<rect x="{lx}" y="{ly - 7}" width="8" height="3" fill="{color}"/>')
        parts.append(
            f'<text x="{lx + 11}" y="{ly - 2}" style="{FONT};font-size:9px" fill="#c7d0d9">'
            f"{escape(series['label'][:26])}</text>"
        )
    return parts


def draw(data: dict[str, Any]) -> str:
    """The dashboard as plain SVG: a dark grid of panels, each series a line, as Grafana shows them."""
    panels = data["panels"]
    rows = (len(panels) + COLUMNS - 1) // COLUMNS
    width = COLUMNS * (PANEL_W + GAP) + GAP
    height = rows * (PANEL_H + GAP) + GAP + 30
    title = "django-prodkit dashboard: the test app under load, Prometheus scraping gunicorn"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#111217"/>',
        f'<text x="{GAP}" y="22" style="{FONT};font-size:14px;font-weight:600" fill="#d8d9da">{escape(title)}</text>',
    ]
    for index, panel in enumerate(panels):
        x = GAP + (index % COLUMNS) * (PANEL_W + GAP)
        y = 30 + GAP + (index // COLUMNS) * (PANEL_H + GAP)
        parts.extend(_panel(panel, x, y, data["minutes"]))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", help="Collect the panels' data from this Prometheus first.")
    parser.add_argument("--minutes", type=float, default=3.0, help="How far back to collect.")
    parser.add_argument("--rate-window", default="15s", help="What $__rate_interval stands for.")
    args = parser.parse_args()
    if args.prometheus:
        DATA.write_text(json.dumps(collect(args.prometheus, args.minutes, args.rate_window), indent=1) + "\n")
    OUTPUT.write_text(draw(json.loads(DATA.read_text())))


if __name__ == "__main__":
    main()
