"""A self-contained HTML report: inline CSS and SVG charts, no script and nothing fetched from the network."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

from django_prodkit.loadtest.charts import histogram_svg, percentiles_svg, throughput_svg
from django_prodkit.loadtest.outcome import RunResult
from django_prodkit.loadtest.report_text import FIGURES, STOPPED, describe_load, error_label, redirect_lines
from django_prodkit.loadtest.results import Tally
from django_prodkit.loadtest.thresholds import Verdict, latency_figure

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937;margin:2rem auto;max-width:780px}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.1rem;margin:1.75rem 0 .5rem;border-bottom:1px solid #e5e7eb}
h3{font-size:1rem;margin:1.25rem 0 .4rem}
table{border-collapse:collapse;width:100%}td,th{padding:.3rem .5rem;border-bottom:1px solid #f1f5f9;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}.pass{color:#15803d;font-weight:600}
.fail{color:#b91c1c;font-weight:600}
.verdict{font-size:1.2rem;padding:.5rem .75rem;border-radius:6px;display:inline-block}
.verdict.pass{background:#dcfce7}.verdict.fail{background:#fee2e2}.muted{color:#6b7280}
svg{width:100%;height:auto;background:#fafafa;border:1px solid #e5e7eb}svg text{font-size:11px;fill:#4b5563}
.legend span{margin-right:1rem}.legend i{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem}
@media print{body{margin:0;max-width:none}h2,h3{break-after:avoid}svg,table{break-inside:avoid}}
"""


def _fmt(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:,.2f}{unit}"


def _rows(rows: Sequence[tuple[str, str]]) -> str:
    return "".join(f'<tr><th>{escape(k)}</th><td class="num">{escape(v)}</td></tr>' for k, v in rows)


def _per_request_table(by_name: dict[str, Tally]) -> str:
    head = "<tr><th>Request</th><th>Requests</th><th>Failed</th><th>Status codes</th>"
    head += "".join(f"<th>{name}</th>" for name, _ in FIGURES) + "</tr>"
    rows = []
    for name, tally in by_name.items():
        statuses = ", ".join(f"{s}: {c:,}" for s, c in sorted(tally.statuses.items())) or "none"
        figures = "".join(f'<td class="num">{_fmt(latency_figure(tally.latency, key))}</td>' for _, key in FIGURES)
        failures = ", ".join(f"{error_label(k)}: {c:,}" for k, c in tally.failures().items())
        rows.append(
            f"<tr><td>{escape(name)}</td><td class='num'>{tally.requests:,}</td>"
            f"<td class='num' title='{escape(failures)}'>{tally.failed:,}</td><td>{escape(statuses)}</td>{figures}</tr>"
        )
    return f"<table>{head}{''.join(rows)}</table><p class='muted'>Latency figures in ms.</p>"


def render_html(result: RunResult, verdicts: list[Verdict]) -> str:
    """The whole report as one HTML document."""
    config, results = result.config, result.results
    total = results.total
    passed = not result.interrupted and all(v.passed for v in verdicts)
    verdict = "PASS" if passed else ("INTERRUPTED" if result.interrupted else "FAIL")
    totals = [
        ("Total requests", f"{total.requests:,}"),
        ("Successful", f"{total.successful:,} ({total.success_rate:.1f}%)"),
        ("Failed", f"{total.failed:,}"),
        ("Dropped (not started on schedule)", f"{total.dropped:,}"),
        ("Total time", f"{results.duration:.2f} s"),
        ("Requests/sec", f"{results.requests_per_second:,.2f}"),
        ("Warm-up requests (not measured)", f"{results.warmup_requests:,}"),
    ]
    times = [(name, _fmt(latency_figure(total.latency, key), " ms")) for name, key in FIGURES]
    crit_rows = "".join(
        f"<tr><td>{escape(v.criterion.label)}</td><td class='num'>{escape(_fmt(v.actual, ' ' + v.criterion.unit))}</td>"
        f"<td>{escape(v.criterion.comparison)} {v.criterion.target:g} {escape(v.criterion.unit)}</td>"
        f"<td class='{'pass' if v.passed else 'fail'}'>{'PASS' if v.passed else 'FAIL'}</td></tr>"
        for v in verdicts
    )
    failures = _rows([(error_label(kind), f"{count:,}") for kind, count in total.failures().items()])
    mode = f"open loop at {config.rate:g} req/s" if config.rate is not None else "closed loop"
    stopped = f'<p class="fail">{escape(STOPPED.get(result.stopped, "Interrupted."))}</p>' if result.stopped else ""
    redirect_text = redirect_lines(config, total)
    redirects = (
        f"<h2>Redirects</h2><p>{escape(redirect_text[0])}</p><ul>"
        + "".join(f"<li>{escape(line.strip())}</li>" for line in redirect_text[1:])
        + "</ul>"
        if redirect_text
        else ""
    )
    per_request = (
        "".join(f"<h3>{escape(name)}</h3>{histogram_svg(tally)}" for name, tally in results.by_name.items())
        if len(results.by_name) > 1
        else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Load test report</title><style>{CSS}</style></head><body>
<h1>Load test report</h1>
<p class="muted">{escape(config.target.url())} &middot; {escape(describe_load(config))} &middot; {mode}
&middot; started {escape(result.started_at.isoformat(timespec="seconds"))}
&middot; {escape(result.parser)} parser on {escape(result.event_loop)}</p>
<p class="verdict {"pass" if passed else "fail"}">{verdict}</p>{stopped}
<h2>Pass/fail criteria</h2>
<table><tr><th>Criterion</th><th>Actual</th><th>Target</th><th>Result</th></tr>{crit_rows}</table>
<h2>Summary</h2><table>{_rows(totals)}</table>
<h2>Response times</h2><table>{_rows(times)}</table>
<h2>Failures by kind</h2>{f"<table>{failures}</table>" if failures else '<p class="muted">None.</p>'}
{redirects}
<h2>Per request</h2>{_per_request_table(results.by_name)}
<h2>Latency histogram</h2>{histogram_svg(total)}
<h2>Requests per second</h2>{throughput_svg(results.timeline, results.duration)}
<h2>Latency percentiles over time</h2>{percentiles_svg(results.timeline, results.duration)}
{f"<h2>Latency histogram per request</h2>{per_request}" if per_request else ""}
</body></html>
"""


def write_html(path: Path, result: RunResult, verdicts: list[Verdict]) -> None:
    """Write the HTML report to ``path``."""
    path.write_text(render_html(result, verdicts), encoding="utf-8")
