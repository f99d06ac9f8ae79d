"""One access-log line in isolation: django-prodkit's JSON line against a bare stdlib logging call.

Run: ``python benchmarks/logline.py`` (or ``make bench``). Every contender writes the same access fields to
/dev/null, each in its own worker process (``configure_logging`` installs structlog's logger class, which
must not reach the bare call): django-prodkit's line as ``AccessLogMiddleware`` writes it (``configure_logging
(fmt="json")``, a request id current) with the standard library's encoder and, when installed, with orjson (the
``[orjson]`` extra); a bare stdlib ``logger.info`` with the same fields and the request id as ``extra`` and a
plain ``%(message)s`` formatter; and ``json.dumps`` of the whole line plus one ``os.write``. The coordinator
asks the workers for batches in interleaved, shuffled rounds and reports the median time per line and each
contender's ratio to the bare call; the target (issue 17) is at most 1.3 with the standard library's encoder,
what ``pip install django-prodkit`` gives.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.harness import interleave  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"

OURS = "django-prodkit JSON access line (stdlib json)"
OURS_ORJSON = "django-prodkit JSON access line (orjson)"
BARE = "bare stdlib logging call, %(message)s formatter"
DUMPS = "json.dumps + os.write"


def _has_orjson() -> bool:
    import importlib.util

    return importlib.util.find_spec("orjson") is not None


CONTENDERS = (OURS, *((OURS_ORJSON,) if _has_orjson() else ()), BARE, DUMPS)

#: Largest allowed ratio of our line's time to the bare call's.
TARGET_RATIO = 1.3

REQUEST_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def _fields() -> dict[str, Any]:
    from django_prodkit.logging import access_log_fields

    return access_log_fields("GET", "/api/v1/items/<slug:slug>/", "/api/v1/items/blue-shoe/", 200, 12.3456789, None)


def _ours(json_encoder: str) -> Callable[[], None]:
    import logging.config

    from django_prodkit.logging import configure_logging, write_access_line
    from django_prodkit.request_id import set_request_id

    config = configure_logging(fmt="json", level="INFO", json_encoder=json_encoder)
    config["handlers"]["stdout"]["stream"] = open(os.devnull, "w")  # noqa: SIM115 - kept open for the worker's life
    logging.config.dictConfig(config)
    set_request_id(REQUEST_ID)
    logger = logging.getLogger("django_prodkit.access")

    def line() -> None:
        write_access_line(logger, _fields())

    return line


def _bare() -> Callable[[], None]:
    import logging

    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115 - kept open for the worker's life
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("django_prodkit.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False

    def line() -> None:
        logger.info("http_request", extra={**_fields(), "request_id": REQUEST_ID})

    return line


def _dumps() -> Callable[[], None]:
    fd = os.open(os.devnull, os.O_WRONLY)

    def line() -> None:
        stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
        payload = {"timestamp": stamp, "level": "info", "logger": "django_prodkit.access", "event": "http_request"}
        payload.update(_fields(), request_id=REQUEST_ID)
        os.write(fd, (json.dumps(payload) + "\n").encode())

    return line


SETUPS: dict[str, Callable[[], Callable[[], None]]] = {
    OURS: lambda: _ours("json"),
    OURS_ORJSON: lambda: _ours("orjson"),
    BARE: _bare,
    DUMPS: _dumps,
}


def worker(name: str) -> None:
    """Answer each batch size read on stdin with the nanoseconds per line."""
    sys.path.insert(0, str(ROOT))
    line = SETUPS[name]()
    for _ in range(2000):
        line()
    for request in sys.stdin:
        count = int(request)
        start = time.perf_counter_ns()
        for _ in range(count):
            line()
        print(f"{(time.perf_counter_ns() - start) / count:.1f}", flush=True)


def measure(rounds: int, batch: int, seed: int) -> dict[str, list[float]]:
    """Interleaved, shuffled rounds over the contenders; nanoseconds per line for each round."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, __file__, "--worker", name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for name in CONTENDERS
    }
    return interleave(procs, rounds, seed, lambda name: batch)


def report(samples: dict[str, list[float]], rounds: int, batch: int) -> dict[str, Any]:
    """Median microseconds per line, ratios to the bare call, and the target."""
    medians = {name: statistics.median(values) / 1000.0 for name, values in samples.items()}
    bare = medians[BARE]
    ratio = medians[OURS] / bare
    names = [name for name in CONTENDERS if name in medians]
    return {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "date": datetime.date.today().isoformat(),
        "rounds": rounds,
        "batch": batch,
        "rows": [
            {"contender": name, "us_per_line": round(medians[name], 2), "ratio_to_bare": round(medians[name] / bare, 3)}
            for name in names
        ],
        "target": {"ratio": round(ratio, 3), "limit": TARGET_RATIO, "met": ratio <= TARGET_RATIO},
    }


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The Markdown tables of docs/benchmarks.md, by block name."""
    lines = [
        f"Python {result['machine']['python']}, {result['machine']['cpus']} CPUs, {result['rounds']} interleaved "
        f"rounds x {result['batch']:,} lines, medians, output to /dev/null, {result.get('date', 'undated')}.",
        "",
        "| what | us per line | ratio to the bare call |",
        "| --- | ---: | ---: |",
    ]
    for row in result["rows"]:
        lines.append(f"| {row['contender']} | {row['us_per_line']:.2f} | {row['ratio_to_bare']:.2f} |")
    target = result["target"]
    lines += [
        "",
        f"Our line with the stdlib encoder / the bare call: {target['ratio']:.2f} (target <= {target['limit']}): "
        f"{'met' if target['met'] else 'NOT met'}.",
    ]
    return {"lines": "\n".join(lines)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--batch", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    result = report(measure(args.rounds, args.batch, args.seed), args.rounds, args.batch)
    print(tables(result)["lines"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "logline.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
