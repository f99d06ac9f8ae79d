"""Inline SVG charts for the HTML report: round axis ticks, the last partial second drawn as partial."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from django_prodkit.loadtest.results import Tally
from django_prodkit.loadtest.thresholds import latency_figure

WIDTH, HEIGHT = 720, 220
PAD_LEFT, PAD_BOTTOM, PAD_TOP, PAD_RIGHT = 56, 34, 26, 12
SERIES_COLOURS = {"p50": "#2563eb", "p95": "#d97706", "p99": "#dc2626"}
HISTOGRAM_BINS = 30


def nice_ticks(top: float, count: int = 6) -> list[float]:
    """Round tick values from 0 to at least ``top``: steps of 1, 2 or 5 times a power of ten."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / (count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < top - 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def log_ticks(low: float, high: float, most: int = 8) -> list[float]:
    """Round values (1, 2 and 5 times a power of ten, or only the powers when that is too many) from ``low`` to
    ``high``, for an axis on a logarithmic scale."""
    if not 0 < low < high:
        return []
    for mantissas in ((1, 2, 5), (1,)):
        ticks = [
            m * 10.0**power
            for power in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
            for m in mantissas
            if low <= m * 10.0**power <= high
        ]
        if len(ticks) <= most:
            return ticks
    return ticks[:: -(-len(ticks) // most)]


def _label(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.3g}"


def _frame(ticks: Sequence[float], y_unit: str, x_labels: Sequence[tuple[float, str]]) -> list[str]:
    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img">']
    for tick in ticks:
        y = _y(tick, ticks[-1])
        parts.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(tick)}</text>')
    parts.append(f'<text x="{PAD_LEFT}" y="14">{escape(y_unit)}</text>')
    for x, label in x_labels:
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 12}" text-anchor="middle">{escape(label)}</text>')
    return parts


def _x(position: float, span: float) -> float:
    return PAD_LEFT + (WIDTH - PAD_LEFT - PAD_RIGHT) * position / max(span, 1e-9)


def _y(value: float, top: float) -> float:
    return HEIGHT - PAD_BOTTOM - (HEIGHT - PAD_TOP - PAD_BOTTOM) * value / (top or 1.0)


def _second_ticks(span: float) -> list[tuple[float, str]]:
    step = nice_ticks(span, 8)[1] if span > 8 else 1.0
    step = max(step, 1.0)
    return [(_x(t, span), f"{t:g}s") for t in [i * step for i in range(int(span // step) + 1)]]


def histogram_svg(tally: Tally) -> str:
    """Latency histogram: one bar per geometric bin, labelled with the bin's lower edge in ms."""
    bins = tally.latency.bins(HISTOGRAM_BINS)
    if not bins:
        return '<p class="muted">No responses.</p>'
    ticks = nice_ticks(max(count for _, _, count in bins))
    low, high = bins[0][0], bins[-1][1]
    # Bins are geometric: a round latency sits at its logarithmic position along the axis.
    span = math.log(high / low) if high > low else 1.0
    labels = [(_x(math.log(v / low) / span * len(bins), len(bins)), f"{v:g}") for v in log_ticks(low, high)]
    parts = _frame(ticks, "responses", labels)
    bar = (WIDTH - PAD_LEFT - PAD_RIGHT) / len(bins)
    for i, (low, high, count) in enumerate(bins):
        y = _y(count, ticks[-1])
        parts.append(
            f'<rect x="{_x(i, len(bins)) + 1:.1f}" y="{y:.1f}" width="{max(bar - 2, 1):.1f}" '
            f'height="{HEIGHT - PAD_BOTTOM - y:.1f}" fill="#3b82f6">'
            f"<title>{low:.3f}-{high:.3f} ms: {count}</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts) + '<p class="muted">Response time in ms (bins grow geometrically).</p>'


def throughput_svg(timeline: Sequence[Tally], duration: float) -> str:
    """Requests finished per second, failed ones stacked in red; the last, partial second is as wide as it lasted."""
    if not timeline:
        return '<p class="muted">No requests.</p>'
    span = max(duration, len(timeline) - 1 + 1e-9)
    rates = []
    for i, second in enumerate(timeline):
        width = min(1.0, max(span - i, 0.05))
        rates.append((i, width, second.requests / width, second.failed / width))
    ticks = nice_ticks(max(rate for _, _, rate, _ in rates))
    parts = _frame(ticks, "req/s", _second_ticks(span))
    for i, width, rate, failed in rates:
        for value, colour in ((rate, "#22c55e"), (failed, "#ef4444")):
            y = _y(value, ticks[-1])
            pixels = (WIDTH - PAD_LEFT - PAD_RIGHT) * width / span
            note = " (partial second)" if width < 1.0 else ""
            parts.append(
                f'<rect x="{_x(i, span) + 1:.1f}" y="{y:.1f}" width="{max(pixels - 2, 1):.1f}" '
                f'height="{HEIGHT - PAD_BOTTOM - y:.1f}" fill="{colour}">'
                f"<title>{i}s: {value:.0f}/s{note}</title></rect>"
            )
    parts.append("</svg>")
    legend = '<i style="background:#22c55e"></i>all</span><span><i style="background:#ef4444"></i>failed'
    return "".join(parts) + f'<p class="legend"><span>{legend}</span></p>'


def percentiles_svg(timeline: Sequence[Tally], duration: float) -> str:
    """p50, p95 and p99 latency of each second, plotted at the middle of the time each second covered."""
    series = {name: [latency_figure(second.latency, name) for second in timeline] for name in SERIES_COLOURS}
    values = [v for points in series.values() for v in points if v is not None]
    if not values:
        return '<p class="muted">No responses.</p>'
    span = max(duration, len(timeline) - 1 + 1e-9)
    ticks = nice_ticks(max(values))
    parts = _frame(ticks, "ms", _second_ticks(span))
    for name, colour in SERIES_COLOURS.items():
        coords = [
            f"{_x(min(i + 0.5, (i + span) / 2), span):.1f},{_y(value, ticks[-1]):.1f}"
            for i, value in enumerate(series[name])
            if value is not None
        ]
        parts.append(f'<polyline points="{" ".join(coords)}" fill="none" stroke="{colour}" stroke-width="2"/>')
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{c}"></i>{n}</span>' for n, c in SERIES_COLOURS.items())
    return "".join(parts) + f'<p class="legend">{legend}</p>'
