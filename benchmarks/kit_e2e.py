"""End-to-end cost of the whole kit: gunicorn throughput under wrk with request ids, metrics and the JSON access log.

Run: ``python benchmarks/kit_e2e.py`` (needs ``wrk``). Two gunicorn servers (2 sync workers each, 127.0.0.1,
multiprocess mode through ``django_prodkit.gunicorn``) serve the same small view: one with Django's default
middleware, one with ``RequestIDMiddleware`` + ``MetricsMiddleware`` + ``AccessLogMiddleware`` added and
``configure_logging(fmt="json", json_encoder="json")`` (the standard library's encoder, as installed by
default) writing one JSON line per request to stdout (a file here, as a container's stdout is a pipe). wrk
drives them in interleaved, shuffled rounds; the target (issue 17) is that the kit keeps at least 0.93 of the
default stack's requests/second. The servers are the ones ``metrics_e2e.py`` starts.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.metrics_e2e import _start, _wrk  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
STACKS = ("default", "kit")
LABELS = {"default": "default stack", "kit": "default stack + request id + metrics + JSON access log"}

#: Smallest allowed ratio of the kit's requests/second to the default stack's.
TARGET_RATIO = 0.93


def throughput(rounds: int, seconds: int, connections: int, workers: int, seed: int) -> dict[str, Any]:
    """Requests/second of each stack in interleaved, shuffled rounds, and the JSON lines the kit wrote."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian package wrk)")
    samples: dict[str, list[float]] = {stack: [] for stack in STACKS}
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="prodkit-kit-e2e-") as workdir:
        servers = {}
        try:
            for stack in STACKS:
                servers[stack] = _start(stack, workers, Path(workdir))
            for stack in STACKS:  # warm each server up before measuring
                _wrk(wrk, servers[stack][1], 1, connections)
            for _ in range(rounds):
                order = list(STACKS)
                rng.shuffle(order)
                for stack in order:
                    samples[stack].append(_wrk(wrk, servers[stack][1], seconds, connections))
        finally:
            for process, _port in servers.values():
                process.send_signal(signal.SIGTERM)
            for process, _port in servers.values():
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        # Proof that the kit did write its lines: count the access lines in its stdout.
        with (Path(workdir) / "gunicorn-kit.log").open(encoding="utf-8", errors="replace") as log:
            access_lines = sum(1 for line in log if '"event": "http_request"' in line)
    return {"samples": samples, "access_lines": access_lines}


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The Markdown tables of docs/benchmarks.md, by block name."""
    settings = result["settings"]
    lines = [
        f"Python {result['machine']['python']}, {result['machine']['cpus']} CPUs, gunicorn {settings['workers']} sync "
        f"workers, wrk -c{settings['connections']}, {settings['rounds']} interleaved rounds x {settings['seconds']} s, "
        f"medians, {result.get('date', 'undated')}.",
        "",
        "| stack | requests/s | ratio to default |",
        "| --- | ---: | ---: |",
    ]
    for row in result["throughput"]:
        lines.append(f"| {row['stack']} | {row['requests_per_second']:.1f} | {row['ratio_to_default']:.3f} |")
    target = result["target"]
    lines += [
        "",
        f"The kit keeps {target['ratio']:.3f} of the default stack's throughput (target >= {target['limit']}): "
        f"{'met' if target['met'] else 'NOT met'}; it wrote {result['access_lines']} JSON access lines.",
    ]
    return {"throughput": "\n".join(lines)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5, help="length of one wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers per server")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    measured = throughput(args.rounds, args.seconds, args.connections, args.workers, args.seed)
    medians = {stack: statistics.median(values) for stack, values in measured["samples"].items()}
    ratio = medians["kit"] / medians["default"]
    result = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "date": datetime.date.today().isoformat(),
        "settings": vars(args),
        "throughput": [
            {
                "stack": LABELS[stack],
                "requests_per_second": round(medians[stack], 1),
                "ratio_to_default": round(medians[stack] / medians["default"], 3),
                "samples": measured["samples"][stack],
            }
            for stack in STACKS
        ],
        "target": {"ratio": round(ratio, 3), "limit": TARGET_RATIO, "met": ratio >= TARGET_RATIO},
        "access_lines": measured["access_lines"],
    }
    print(tables(result)["throughput"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "kit_e2e.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
