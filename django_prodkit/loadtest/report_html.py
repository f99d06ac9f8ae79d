"""A self-contained HTML report: inline CSS and SVG charts, no script and nothing fetched from the network."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

from django_prodkit.loadtest.engine import RunResult
from django_prodkit.loadtest.report_text import error_label
from django_prodkit.loadtest.thresholds import CriterionResult

WIDTH, HEIGHT = 720, 220
PAD_LEFT, PAD_BOTTOM, PAD_TOP, PAD_RIGHT = 56, 34, 26, 12
SERIES_COLOURS = {"p50": "#2563eb", "p95": "#d97706", "p99": "#dc2626"}
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937;margin:2rem auto;max-width:780px}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.1rem;margin:1.75rem 0 .5rem;border-bottom:1px solid #e5e7eb}
table{border-collapse:collapse;width:100%}td,th{padding:.3rem .5rem;border-bottom:1px solid #f1f5f9;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}.pass{color:#15803d;font-weight:600}
.fail{color:#b91c1c;font-weight:600}
.verdict{font-size:1.2rem;padding:.5rem .75rem;border-radius:6px;display:inline-block}
.verdict.pass{background:#dcfce7}.verdict.fail{background:#fee2e2}.muted{color:#6b7280}
svg{width:100%;height:auto;background:#fafafa;border:1px solid #e5e7eb}svg text{font-size:11px;fill:#4b5563}
.legend span{margin-right:1rem}.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem}
@media print{body{margin:0;max-width:none}h2{break-after:avoid}svg,table{break-inside:avoid}}
"""


def _fmt(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:,.2f}{unit}"


def _frame(y_max: float, y_unit: str, x_labels: Sequence[tuple[float, str]]) -> list[str]:
    """Axes, horizontal grid lines with their values, and x labels at the given x positions."""
    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img">']
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    for step in range(5):
        y = PAD_TOP + inner_h * (1 - step / 4)
        parts.append(f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{y_max * step / 4:,.4g}</text>')
    parts.append(f'<text x="{PAD_LEFT}" y="14">{escape(y_unit)}</text>')
    for x, label in x_labels:
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 12}" text-anchor="middle">{escape(label)}</text>')
    return parts


def _x(index: float, count: int) -> float:
    return PAD_LEFT + (WIDTH - PAD_LEFT - PAD_RIGHT) * index / max(count, 1)


def _y(value: float, y_max: float) -> float:
    return HEIGHT - PAD_BOTTOM - (HEIGHT - PAD_TOP - PAD_BOTTOM) * value / (y_max or 1.0)


def _ticks(count: int, label: str) -> list[tuple[float, str]]:
    step = max(1, count // 8)
    return [(_x(i + 0.5, count), f"{i}{label}") for i in range(0, count, step)]


def histogram_svg(bins: Sequence[tuple[float, float, int]]) -> str:
    """Latency histogram: one bar per bin, labelled with the bin's lower edge in ms."""
    if not bins:
        return '<p class="muted">No responses.</p>'
    y_max = max(count for _, _, count in bins)
    step = max(1, len(bins) // 6)
    labels = [(_x(i, len(bins)), f"{low:.3g}") for i, (low, _, _) in enumerate(bins) if i % step == 0]
    parts = _frame(y_max, "responses", labels)
    bar = (WIDTH - PAD_LEFT - PAD_RIGHT) / len(bins)
    for i, (low, high, count) in enumerate(bins):
        y = _y(count, y_max)
        parts.append(
            f'<rect x="{_x(i, len(bins)) + 1:.1f}" y="{y:.1f}" width="{max(bar - 2, 1):.1f}" '
            f'height="{HEIGHT - PAD_BOTTOM - y:.1f}" fill="#3b82f6">'
            f"<title>{low:.3f}-{high:.3f} ms: {count}</title></rect>"
        )
    parts.append("</svg>")
    return "".join(parts) + '<p class="muted">Response time in ms (bins grow geometrically).</p>'


def throughput_svg(result: RunResult) -> str:
    """Requests finished per second, failed ones stacked in red."""
    points = result.summary.timeline
    if not points:
        return '<p class="muted">No requests.</p>'
    y_max = max(p.requests for p in points)
    parts = _frame(y_max, "req/s", _ticks(len(points), "s"))
    bar = (WIDTH - PAD_LEFT - PAD_RIGHT) / len(points)
    for i, p in enumerate(points):
        for value, colour in ((p.requests, "#22c55e"), (p.failed, "#ef4444")):
            y = _y(value, y_max)
            parts.append(
                f'<rect x="{_x(i, len(points)) + 1:.1f}" y="{y:.1f}" width="{max(bar - 2, 1):.1f}" '
                f'height="{HEIGHT - PAD_BOTTOM - y:.1f}" fill="{colour}"><title>{i}s: {value}</title></rect>'
            )
    parts.append("</svg>")
    legend = '<i style="background:#22c55e"></i>all</span><span><i style="background:#ef4444"></i>failed'
    return "".join(parts) + f'<p class="legend"><span>{legend}</span></p>'


def percentiles_svg(result: RunResult) -> str:
    """p50, p95 and p99 latency of each second."""
    points = result.summary.timeline
    values = [v for p in points for v in (p.p50_ms, p.p95_ms, p.p99_ms) if v is not None]
    if not values:
        return '<p class="muted">No responses.</p>'
    y_max = max(values)
    parts = _frame(y_max, "ms", _ticks(len(points), "s"))
    for name, colour in SERIES_COLOURS.items():
        coords = [
            f"{_x(i + 0.5, len(points)):.1f},{_y(value, y_max):.1f}"
            for i, p in enumerate(points)
            if (value := getattr(p, f"{name}_ms")) is not None
        ]
        parts.append(f'<polyline points="{" ".join(coords)}" fill="none" stroke="{colour}" stroke-width="2"/>')
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{c}"></i>{n}</span>' for n, c in SERIES_COLOURS.items())
    return "".join(parts) + f'<p class="legend">{legend}</p>'


def _rows(rows: Sequence[tuple[str, str]]) -> str:
    return "".join(f'<tr><th>{escape(k)}</th><td class="num">{escape(v)}</td></tr>' for k, v in rows)


def render_html(result: RunResult, criteria: list[CriterionResult]) -> str:
    """The whole report as one HTML document."""
    config, summary, latency = result.config, result.summary, result.summary.latency
    passed = not result.interrupted and all(c.passed for c in criteria)
    verdict = "PASS" if passed else ("INTERRUPTED" if result.interrupted else "FAIL")
    totals = [
        ("Total requests", f"{summary.requests:,}"),
        ("Successful", f"{summary.successful:,} ({summary.success_rate:.1f}%)"),
        ("Failed", f"{summary.failed:,}"),
        ("Total time", f"{summary.duration:.2f} s"),
        ("Requests/sec", f"{summary.requests_per_second:,.2f}"),
        ("Warm-up requests (not measured)", f"{result.warmup_requests:,}"),
    ]
    times = [(name.capitalize(), _fmt(getattr(latency, name) if latency else None, " ms")) for name in ("min", "avg")]
    times += [(name, _fmt(getattr(latency, name.lower()) if latency else None, " ms")) for name in ("Median",)]
    times += [(n.upper(), _fmt(getattr(latency, n) if latency else None, " ms")) for n in ("p90", "p95", "p99")]
    times.append(("Max", _fmt(latency.max if latency else None, " ms")))
    crit_rows = "".join(
        f"<tr><td>{escape(c.label)}</td><td class='num'>{escape(_fmt(c.actual, ' ' + c.unit))}</td>"
        f"<td>{escape(c.comparison)} {c.target:g} {escape(c.unit)}</td>"
        f"<td class='{'pass' if c.passed else 'fail'}'>{'PASS' if c.passed else 'FAIL'}</td></tr>"
        for c in criteria
    )
    failures = _rows([(error_label(kind), f"{count:,}") for kind, count in summary.errors.items()])
    mode = f"open loop at {config.rate:g} req/s" if config.rate is not None else "closed loop"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Load test report</title><style>{CSS}</style></head><body>
<h1>Load test report</h1>
<p class="muted">{escape(config.method)} {escape(config.target.url())} &middot; paths {escape(", ".join(config.paths))}
&middot; {config.users} users &middot; {mode} &middot; started {escape(result.started_at.isoformat(timespec="seconds"))}
&middot; {escape(result.parser)} parser on {escape(result.event_loop)}</p>
<p class="verdict {"pass" if passed else "fail"}">{verdict}</p>
<h2>Pass/fail criteria</h2>
<table><tr><th>Criterion</th><th>Actual</th><th>Target</th><th>Result</th></tr>{crit_rows}</table>
<h2>Summary</h2><table>{_rows(totals)}</table>
<h2>Response times</h2><table>{_rows(times)}</table>
<h2>Failures by kind</h2>{f"<table>{failures}</table>" if failures else '<p class="muted">None.</p>'}
<h2>Latency histogram</h2>{histogram_svg(summary.histogram)}
<h2>Requests per second</h2>{throughput_svg(result)}
<h2>Latency percentiles over time</h2>{percentiles_svg(result)}
</body></html>
"""


def write_html(path: Path, result: RunResult, criteria: list[CriterionResult]) -> None:
    """Write the HTML report to ``path``."""
    path.write_text(render_html(result, criteria), encoding="utf-8")
