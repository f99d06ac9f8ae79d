"""Where requests come from: each user's own count (closed loop) or a shared schedule (open loop).

Both number their jobs across the whole run, so a share (``--segment``, ``--processes``) takes exactly its stripe
of what one machine would have done, and the request mix is the same function of the job number everywhere.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterator, Sequence
from itertools import accumulate
from time import perf_counter
from typing import TYPE_CHECKING

from django_prodkit.loadtest.config import LoadTestConfig, Stage

if TYPE_CHECKING:
    from django_prodkit.loadtest.client import User

Job = tuple[float | None, int]
"""A request to send: its scheduled start (None: now) and the index of its request in the mix."""

# The fractional parts of k x (golden ratio) spread evenly over [0, 1) for any run of consecutive k.
_GOLDEN = (math.sqrt(5) - 1) / 2


class Mix:
    """Picks the request of job ``k``: in turn when all weights are equal, else by weight, evenly spread."""

    def __init__(self, weights: Sequence[float]) -> None:
        self.count = len(weights)
        self.uniform = len(set(weights)) == 1
        total = sum(weights)
        self.bounds = [value / total for value in accumulate(weights)]

    def pick(self, k: int) -> int:
        """The request index of job ``k``."""
        if self.uniform:
            return k % self.count
        return min(bisect.bisect_right(self.bounds, (k * _GOLDEN) % 1.0), self.count - 1)


def ramp(start: float, stages: Sequence[Stage], elapsed: float) -> float:
    """The users or rate at ``elapsed`` seconds: linear from each stage's start value to its target."""
    value = start
    for stage in stages:
        if elapsed < stage.duration:
            return value + (stage.target - value) * elapsed / stage.duration
        elapsed -= stage.duration
        value = stage.target
    return value


def schedule(config: LoadTestConfig) -> Iterator[tuple[float, int]]:
    """The open-loop schedule of the whole run: (seconds after the start, job number), in time order."""
    assert config.rate is not None
    total, end = config.total_requests, config.run_duration
    if not config.stages:
        k = 0
        while (total is None or k < total) and (end is None or k / config.rate < end):
            yield k / config.rate, k
            k += 1
        return
    # Job k starts when the integral of the rate reaches k; solved stage by stage (rate linear in time).
    k, done, start, rate = 0, 0.0, 0.0, config.rate
    for stage in config.stages:
        slope = (stage.target - rate) / stage.duration
        area = rate * stage.duration + slope * stage.duration**2 / 2
        while k < done + area - 1e-9 and (total is None or k < total):
            x = k - done
            if abs(slope) < 1e-12:
                offset = x / rate
            else:
                offset = (-rate + math.sqrt(max(rate * rate + 2 * slope * x, 0.0))) / slope
            yield start + offset, k
            k += 1
        done, start, rate = done + area, start + stage.duration, stage.target


class ClosedLoop:
    """Each user sends its next request when the previous one is done, up to a count, a deadline, a ramp."""

    def __init__(self, config: LoadTestConfig, users: list[User], per_user: dict[int, int] | None) -> None:
        self.config = config
        self.mix = Mix([spec.weight for spec in config.specs])
        for user in users:
            user.remaining, user.sequence = (-1 if per_user is None else per_user[user.index]), 0
        self.started = perf_counter()
        self.end = None if config.run_duration is None else self.started + config.run_duration
        self.exhausted = True

    def active(self, user: User, now: float) -> bool:
        """Whether ``user`` takes part at ``now`` (stages ramp the number of users)."""
        if not self.config.stages:
            return True
        return user.index < round(ramp(self.config.users, self.config.stages, now - self.started))

    def take(self, user: User) -> Job | None:
        """The next request of ``user``, or None when it is done or not active (yet)."""
        now = perf_counter()
        if user.remaining == 0 or (self.end is not None and now >= self.end) or not self.active(user, now):
            return None
        user.remaining -= 1
        user.sequence += 1
        if self.mix.uniform:
            return None, (user.index + user.sequence - 1) % self.mix.count
        return None, self.mix.pick((user.sequence - 1) * self.config.users + user.index)


class OpenLoop:
    """Requests start on the schedule whether or not earlier ones are done; late ones wait in a bounded backlog."""

    def __init__(self, backlog: int) -> None:
        self.queue: deque[tuple[float, int]] = deque()
        self.backlog = backlog
        self.exhausted = False

    def take(self, user: User) -> Job | None:
        """The oldest waiting request, or None when none is waiting."""
        if not self.queue:
            return None
        return self.queue.popleft()
