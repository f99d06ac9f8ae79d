"""Where a user's next request comes from: its own count (closed loop) or a shared schedule (open loop)."""

from __future__ import annotations

from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django_prodkit.loadtest.client import User

Job = tuple[float | None, int]
"""A request to send: its scheduled start (None: now) and the index of its path."""


class ClosedLoop:
    """Each user sends its next request when the previous one is done, up to a count or a deadline."""

    def __init__(self, users: list[User], per_user: list[int] | None, deadline: float | None, paths: int) -> None:
        for user, count in zip(users, per_user or [-1] * len(users), strict=True):
            user.remaining, user.sequence = count, 0
        self.deadline = deadline
        self.paths = paths
        self.exhausted = True

    def take(self, user: User) -> Job | None:
        """The next request of ``user``, or None when it is done."""
        if user.remaining == 0 or (self.deadline is not None and perf_counter() >= self.deadline):
            return None
        user.remaining -= 1
        user.sequence += 1
        return None, (user.index + user.sequence - 1) % self.paths


class OpenLoop:
    """Requests start on a fixed schedule whether or not earlier ones are done; late ones wait in a queue."""

    def __init__(self) -> None:
        self.queue: deque[Job] = deque()
        self.exhausted = False

    def take(self, user: User) -> Job | None:
        """The oldest due request, or None when none is waiting."""
        return self.queue.popleft() if self.queue else None
