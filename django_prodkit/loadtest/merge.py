"""``loadtest --merge FILE ...``: the JSON reports of a run's segments combined into the report of the run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from django_prodkit.loadtest.outcome import RunResult
from django_prodkit.loadtest.report_json import read_report
from django_prodkit.loadtest.results import merge
from django_prodkit.loadtest.server_metrics import earliest_and_latest
from django_prodkit.loadtest.share import Share, coverage_problem


class MergeError(ValueError):
    """The files are not the reports of the segments of one run."""


def read_reports(paths: list[Path]) -> list[tuple[Path, RunResult, str]]:
    """Each file's result and run id; MergeError naming the file when one cannot be read."""
    reports = []
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            result, run_id = read_report(data)
        except OSError as exc:
            raise MergeError(f"--merge {path}: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise MergeError(f"--merge {path}: not JSON ({exc})") from None
        except (KeyError, ValueError, TypeError, AttributeError, RecursionError, OverflowError) as exc:
            raise MergeError(f"--merge {path}: not a loadtest JSON report ({type(exc).__name__}: {exc})") from None
        reports.append((path, result, run_id))
    return reports


def merge_results(results: list[RunResult], share: Share) -> RunResult:
    """Combine results of disjoint shares that ran side by side into the result of ``share``, which they make up
    (the processes of a segment, or the segments of a run as checked by the caller)."""
    first = results[0]
    stopped = next((r.stopped for r in results if r.stopped is not None), None)
    return RunResult(
        config=replace(first.config, share=share),
        results=merge([r.results for r in results]),
        started_at=min(r.started_at for r in results),
        stopped=stopped,
        parser=first.parser,
        event_loop=first.event_loop,
    )


def merge_reports(paths: list[Path]) -> RunResult:
    """Read, check and merge segment reports: same run, no segment twice, none missing."""
    reports = read_reports(paths)
    first_path, _, first_id = reports[0]
    for path, _, run_id in reports[1:]:
        if run_id != first_id:
            raise MergeError(
                f"--merge: {path} is from a different run than {first_path} (run id {run_id} vs {first_id}): "
                "the segments of one run share every option but --segment"
            )
    problem = coverage_problem([result.config.share for _, result, _ in reports])
    if problem is not None:
        files = ", ".join(f"{path} ({result.config.share.label})" for path, result, _ in reports)
        raise MergeError(f"--merge: {problem} in {files}")
    whole = Share(0, 1, reports[0][1].config.share.segments)
    merged = merge_results([result for _, result, _ in reports], whole)
    readings = [result.server_readings for _, result, _ in reports]
    if readings and all(pair is not None for pair in readings):
        # Read before the first segment and after the last: the smallest and the largest of each counter.
        merged = replace(merged, server_readings=earliest_and_latest([p for p in readings if p is not None]))
    return merged
