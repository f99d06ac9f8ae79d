"""Plain-SVG horizontal bar charts for the benchmark pages: no plotting library, the same text for the same data."""

from __future__ import annotations

from html import escape

WIDTH = 760
LABEL_WIDTH = 330
BAR_AREA = 330
ROW = 28
TOP = 46
OURS = "#2f6f9f"
PEER = "#a0a4a8"
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"


def bar_chart(title: str, unit: str, bars: list[tuple[str, float, bool]], decimals: int = 1) -> str:
    """A chart of ``(label, value, ours)`` bars: django-prodkit's in blue, the others in grey; negatives drawn as 0."""
    largest = max((value for _, value, _ in bars), default=0.0) or 1.0
    height = TOP + ROW * len(bars) + 34
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="12" y="26" style="{FONT};font-size:16px;font-weight:600" fill="#1a1a1a">{escape(title)}</text>',
    ]
    for index, (label, value, ours) in enumerate(bars):
        y = TOP + ROW * index
        width = max(0.0, value) / largest * BAR_AREA
        parts += [
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 18}" text-anchor="end" style="{FONT};font-size:13px" '
            f'fill="#1a1a1a">{escape(label)}</text>',
            f'<rect x="{LABEL_WIDTH}" y="{y + 5}" width="{width:.1f}" height="{ROW - 10}" '
            f'fill="{OURS if ours else PEER}"/>',
            f'<text x="{LABEL_WIDTH + width + 6:.1f}" y="{y + 18}" style="{FONT};font-size:12px" '
            f'fill="#1a1a1a">{value:,.{decimals}f} {escape(unit)}</text>',
        ]
    legend_y = TOP + ROW * len(bars) + 20
    parts += [
        f'<rect x="{LABEL_WIDTH}" y="{legend_y - 10}" width="12" height="12" fill="{OURS}"/>',
        f'<text x="{LABEL_WIDTH + 18}" y="{legend_y}" style="{FONT};font-size:12px" fill="#1a1a1a">'
        "django-prodkit</text>",
        f'<rect x="{LABEL_WIDTH + 130}" y="{legend_y - 10}" width="12" height="12" fill="{PEER}"/>',
        f'<text x="{LABEL_WIDTH + 148}" y="{legend_y}" style="{FONT};font-size:12px" fill="#1a1a1a">'
        "baseline or another library</text>",
        "</svg>",
    ]
    return "\n".join(parts) + "\n"
