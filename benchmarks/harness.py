"""What the in-process benchmarks share: worker processes driven in interleaved, shuffled rounds.

Each scenario runs in a worker process of its own that reads a batch size on stdin, runs that many
iterations and answers the nanoseconds they took. Interleaving the scenarios round by round, in an order
shuffled with a fixed seed, spreads a shared machine's noise over all of them alike.
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable


def interleave(
    procs: dict[str, subprocess.Popen[str]], rounds: int, seed: int, batch_of: Callable[[str], int]
) -> dict[str, list[float]]:
    """Drive every worker for ``rounds`` rounds; each sample is one answer (nanoseconds for one batch)."""
    names = list(procs)
    samples: dict[str, list[float]] = {name: [] for name in names}
    rng = random.Random(seed)
    try:
        for _ in range(rounds):
            order = names[:]
            rng.shuffle(order)
            for name in order:
                proc = procs[name]
                assert proc.stdin
                assert proc.stdout
                proc.stdin.write(f"{batch_of(name)}\n")
                proc.stdin.flush()
                answer = proc.stdout.readline()
                if not answer:
                    raise SystemExit(f"worker for {name!r} died (exit {proc.wait()})")
                samples[name].append(float(answer))
    finally:
        for proc in procs.values():
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=30)
            if proc.stdout:
                proc.stdout.close()
    return samples
