"""Draw ``docs/_static/middleware.svg``, the overview's picture of a request passing the middleware.

Run: ``python docs/middleware_diagram.py`` after changing the overview's numbered list of the middleware order; the
layers are read from that list, so the picture cannot show another order (``tests/test_doc_snippets.py`` checks
the file is up to date, and that the quickstart with every page's snippets pasted gives this order). Plain SVG
text, no drawing library.
"""

from __future__ import annotations

import re
import sys
from html import escape
from pathlib import Path

DOCS = Path(__file__).resolve().parent
OUTPUT = DOCS / "_static" / "middleware.svg"
ORDER_LIST = re.compile(r"<!-- middleware-order -->\n((?:\d+\. .*\n)+)")
ORDER_ITEM = re.compile(
    r"^\d+\. (?:`django_prodkit\.middleware\.(?P<ours>\w+)`|(?P<django>Django's own middleware))", re.M
)
DJANGO = "Django's middleware"
#: What each layer does, in a few words on two lines.
ROLES: dict[str, tuple[str, str]] = {
    "RequestIDMiddleware": ("keeps a valid X-Request-ID or makes one,", "binds it for logs and traces"),
    "HealthCheckMiddleware": ("answers health probes by IP, before host", "validation and the HTTPS redirect run"),
    "MetricsMiddleware": ("counts method, route, status, duration", "in files shared by the workers"),
    "TracingMiddleware": ("one span per sampled request", "(OpenTelemetry or X-Ray; removes itself when off)"),
    "AccessLogMiddleware": ("one JSON http_request line per request", "with the request id, route, status, user"),
    DJANGO: ("security, sessions, common, CSRF,", "auth, messages, clickjacking"),
}
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
WIDTH, LEFT, RIGHT = 890, 70, 610
ROW, GAP, TOP = 54, 8, 96
OURS, THEIRS, EDGE, INK = "#e8f0f7", "#f2f2f2", "#2f6f9f", "#1a1a1a"


def layers(overview: str) -> list[str]:
    """The layers, top to bottom, of the overview's numbered list of the middleware order."""
    match = ORDER_LIST.search(overview)
    if match is None:
        raise SystemExit("docs/overview.md has no numbered list after <!-- middleware-order -->")
    items = list(ORDER_ITEM.finditer(match.group(1)))
    if len(items) != match.group(1).count("\n"):
        raise SystemExit("every item of the overview's middleware order names one of ours or Django's own")
    return [item["ours"] or DJANGO for item in items]


def _text(x: float, y: float, text: str, size: int = 13, weight: int = 400, anchor: str = "start") -> str:
    return (
        f'<text x="{x}" y="{y}" text-anchor="{anchor}" style="{FONT};font-size:{size}px;font-weight:{weight}" '
        f'fill="{INK}">{escape(text)}</text>'
    )


def _box(x: float, y: float, width: float, height: float, fill: str, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="5 4"' if dashed else ""
    return (
        f'<rect x="{x}" y="{y}" width="{width}" height="{height}" rx="6" fill="{fill}" stroke="{EDGE}" '
        f'stroke-width="1.2"{dash}/>'
    )


def _arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{EDGE}" stroke-width="1.6" marker-end="url(#head)"/>'


def draw(names: list[str]) -> str:
    bottom = TOP + len(names) * (ROW + GAP)
    height = bottom + 70
    middle = (LEFT + RIGHT) / 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        'role="img" aria-label="A request passing django-prodkit\'s middleware, top to bottom">',
        "<title>A request passing the middleware: in from the top, out from the bottom up</title>",
        '<defs><marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{EDGE}"/></marker></defs>',
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        _box(LEFT + 60, 14, RIGHT - LEFT - 120, 40, "#ffffff"),
        _text(middle, 39, "load balancer / CloudFront / App Runner", 14, 600, "middle"),
        _arrow(middle, 54, middle, TOP - 6),
        _text(30, TOP + 14, "request", 12, 600, "middle"),
        _arrow(30, TOP + 22, 30, bottom - 10),
        _text(RIGHT + 30, TOP + 14, "response", 12, 600, "middle"),
        _arrow(RIGHT + 30, bottom - 10, RIGHT + 30, TOP + 22),
    ]
    for index, name in enumerate(names):
        y = TOP + index * (ROW + GAP)
        first, second = ROLES.get(name, ("", ""))
        parts += [
            _box(LEFT, y, RIGHT - LEFT, ROW, THEIRS if name == DJANGO else OURS, dashed=name == DJANGO),
            _text(LEFT + 14, y + 22, f"{index + 1}  {name}", 14, 600),
            _text(LEFT + 34, y + 41, f"{first} {second}", 12),
        ]
        if name == "MetricsMiddleware":
            side = RIGHT + 70
            parts += [
                _arrow(RIGHT, y + ROW / 2, side - 4, y + ROW / 2),
                _box(side, y, WIDTH - side - 12, ROW, "#ffffff"),
                _text(side + 10, y + 22, "metric files (per worker)", 12, 600),
                _text(side + 10, y + 41, "/api/v1/metrics/, CloudWatch", 12),
            ]
    parts += [
        _arrow(middle, bottom - GAP, middle, bottom + 12),
        _box(LEFT + 120, bottom + 16, RIGHT - LEFT - 240, 40, "#ffffff"),
        _text(middle, bottom + 41, "your views", 14, 600, "middle"),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def main() -> None:
    svg = draw(layers((DOCS / "overview.md").read_text()))
    if "--check" in sys.argv[1:]:
        if not OUTPUT.exists() or OUTPUT.read_text() != svg:
            raise SystemExit(f"{OUTPUT.relative_to(DOCS.parent)} is out of date: run python docs/middleware_diagram.py")
        return
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(svg)
    print(f"wrote {OUTPUT.relative_to(DOCS.parent)}")


if __name__ == "__main__":
    main()
