"""Deterministic shares of a run: ``--segment I/N`` and the processes of ``--processes``.

A share is a stripe: every job (a user, or a request of the open-loop schedule) numbered ``k`` in the whole run
belongs to the share with ``k % modulus == offset``. N stripes of one modulus are disjoint and together are the
whole run, wherever they are executed; a stripe of a stripe is again a stripe, so the processes of a segment
split it the same way.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

SEGMENT_RE = re.compile(r"([1-9][0-9]*)/([1-9][0-9]*)")
MAX_COVER_CHECK = 1 << 16


@dataclass(frozen=True)
class Share:
    """Jobs ``k`` with ``k % modulus == offset``; ``segments`` is the N of ``--segment I/N`` it came from."""

    offset: int = 0
    modulus: int = 1
    segments: int = 1

    @property
    def label(self) -> str:
        """``I/N`` for a segment, ``offset%modulus`` for a process of one."""
        return f"{self.offset + 1}/{self.modulus}"

    def includes(self, k: int) -> bool:
        """Whether job ``k`` of the whole run is in this share."""
        return k % self.modulus == self.offset

    def split(self, parts: int, index: int) -> Share:
        """The ``index``-th of ``parts`` stripes of this share."""
        return Share(self.offset + self.modulus * index, self.modulus * parts, self.segments)

    def count(self, total: int) -> int:
        """How many of jobs ``0 .. total-1`` are in this share."""
        return max(0, -(-(total - self.offset) // self.modulus))


def parse_segment(text: str) -> Share:
    """``"2/4"`` -> the second of four shares; ValueError with the reason otherwise."""
    match = SEGMENT_RE.fullmatch(text)
    if not match:
        raise ValueError(f"--segment {text!r}: expected I/N, e.g. 1/4")
    index, count = int(match.group(1)), int(match.group(2))
    if index > count:
        raise ValueError(f"--segment {text!r}: I must be between 1 and N")
    return Share(index - 1, count, count)


def coverage_problem(shares: list[Share]) -> str | None:
    """Why these shares are not exactly one whole run (overlap or gap), or None when they are."""
    period = 1
    for share in shares:
        period = period * share.modulus // math.gcd(period, share.modulus)
        if period > MAX_COVER_CHECK:
            return "too many different segment counts to check"
    for k in range(period):
        owners = [share.label for share in shares if share.includes(k)]
        if len(owners) > 1:
            return f"overlapping segments: {' and '.join(owners)}"
        if not owners:
            return f"missing segment: job {k} of every {period} is in none of them"
    return None
