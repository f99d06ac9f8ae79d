"""``--processes N``: N engine processes, each with its stripe of the run, their results merged exactly.

Each process is ``python -m django_prodkit.loadtest.worker`` (see there). Ctrl-C reaches them all (they share
the terminal's process group) and the parent forwards SIGINT to any still running, then merges what they finished.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from pathlib import Path

import django_prodkit
from django_prodkit.loadtest.config import LoadTestConfig
from django_prodkit.loadtest.merge import merge_results
from django_prodkit.loadtest.outcome import STOP_INTERRUPTED, LoadTestError, Progress, RunResult
from django_prodkit.loadtest.thresholds import Criterion
from django_prodkit.loadtest.worker import PROGRESS, RESULT

JOIN_TIMEOUT = 10.0
PACKAGE_ROOT = str(Path(django_prodkit.__file__).resolve().parent.parent)


def _start(
    config: LoadTestConfig, use_uvloop: bool, interval: float, abort: list[Criterion]
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, env.get("PYTHONPATH")]))
    process = subprocess.Popen(
        [sys.executable, "-m", "django_prodkit.loadtest.worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert process.stdin is not None
    sender = Connection(os.dup(process.stdin.fileno()))
    sender.send((config, use_uvloop, interval, abort))
    sender.close()
    process.stdin.close()
    return process


def run_processes(
    config: LoadTestConfig,
    processes: int,
    on_progress: Callable[[Progress], None] | None = None,
    *,
    use_uvloop: bool = True,
    progress_interval: float = 1.0,
    abort: list[Criterion] | None = None,
) -> RunResult:
    """Run ``config`` split over ``processes`` processes and merge their results."""
    children: dict[Connection, subprocess.Popen[bytes]] = {}
    try:
        for index in range(processes):
            share = config.share.split(processes, index)
            child = _start(replace(config, share=share), use_uvloop, progress_interval, abort or [])
            assert child.stdout is not None
            children[Connection(os.dup(child.stdout.fileno()))] = child
        results, errors = _collect(dict(children), on_progress)
    finally:
        for receiver, child in children.items():
            receiver.close()
            try:
                child.wait(JOIN_TIMEOUT)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            for stream in (child.stdout, child.stdin):
                if stream is not None:
                    stream.close()
    if errors and not results:
        raise LoadTestError(errors[0])
    if not results:
        raise LoadTestError(f"none of the {processes} load processes sent a result")
    merged = merge_results(results, config.share)
    if len(results) < processes:
        return replace(merged, stopped=merged.stopped or STOP_INTERRUPTED)
    return merged


def _collect(
    pending: dict[Connection, subprocess.Popen[bytes]], on_progress: Callable[[Progress], None] | None
) -> tuple[list[RunResult], list[str]]:
    latest: dict[Connection, Progress] = {}
    results: list[RunResult] = []
    errors: list[str] = []
    while pending:
        try:
            ready = wait(list(pending), timeout=1.0)
        except KeyboardInterrupt:
            # Ctrl-C: the children got it too when it came from the terminal; make sure of it, then keep collecting.
            for child in pending.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)
            continue
        for receiver in ready:
            assert isinstance(receiver, Connection)
            try:
                kind, payload = receiver.recv()
            except (EOFError, OSError):
                del pending[receiver]
                continue
            if kind == PROGRESS:
                latest[receiver] = payload
                if on_progress is not None:
                    on_progress(_combined(list(latest.values())))
            elif kind == RESULT:
                results.append(payload)
            else:
                errors.append(payload)
    return results, errors


def _combined(snapshots: list[Progress]) -> Progress:
    first = snapshots[0]
    expected = [s.expected for s in snapshots]
    return Progress(
        phase=first.phase,
        completed=sum(s.completed for s in snapshots),
        failed=sum(s.failed for s in snapshots),
        elapsed=max(s.elapsed for s in snapshots),
        expected=None if None in expected else sum(e or 0 for e in expected),
        duration=first.duration,
    )
