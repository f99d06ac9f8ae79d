"""The load engine: virtual users on one event loop, closed-loop or on an open-loop schedule, always bounded.

A run cannot hang: every request has a deadline (its scheduled start plus ``--timeout``) that the watchdog
enforces whether it is connecting or in flight; the helper tasks end the run if they fail; and the whole run
has a deadline (:meth:`LoadTestConfig.deadline`) after which it stops and reports what finished.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from datetime import datetime, timezone
from time import perf_counter
from typing import Any

from django_prodkit.loadtest.client import CONNECTING, IDLE, IN_FLIGHT, User, build_request, connect_error_kind
from django_prodkit.loadtest.config import LoadTestConfig
from django_prodkit.loadtest.outcome import (
    STOP_DEADLINE,
    STOP_INTERRUPTED,
    LoadTestError,
    Progress,
    RunResult,
)
from django_prodkit.loadtest.parser import parser_name
from django_prodkit.loadtest.recorder import Recorder
from django_prodkit.loadtest.results import build
from django_prodkit.loadtest.sources import ClosedLoop, Mix, OpenLoop, schedule

WATCHDOG_TICK = 0.05
CLOSE_GRACE = 1.0
RUN_GRACE = 5.0


class Engine:
    """Runs one load test on the current event loop; :meth:`stop` ends it early with what was done."""

    def __init__(self, config: LoadTestConfig, on_progress: Callable[[Progress], None] | None = None) -> None:
        self.config = config
        self.on_progress = on_progress
        self.progress_interval = 1.0
        self.check_invariant_every_tick = False
        self.on_tick: Callable[[Engine], None] | None = None
        self.head = all(spec.method == "HEAD" for spec in config.specs)
        self.payloads = [build_request(config, spec) for spec in config.specs]
        self.recorder = Recorder()
        self.open_connections = 0
        self.stopped: str | None = None
        #: "warmup" or "test": the phase running now (criteria and abort checks look at "test" only).
        self.phase = ""
        self.loop: asyncio.AbstractEventLoop
        self.users: list[User] = []
        self._idle: list[User] = []
        self._source: ClosedLoop | OpenLoop = OpenLoop(0)
        self._done: asyncio.Future[None] | None = None
        self._address: tuple[Any, ...] = ()
        self._ssl: ssl.SSLContext | None = None
        self._zero = 0.0

    async def connect(self, factory: Callable[[], asyncio.Protocol]) -> tuple[asyncio.BaseTransport, Any]:
        """Open a connection to the target (TLS for https, the name checked against the certificate)."""
        hostname = self.config.target.host if self._ssl is not None else None
        return await self.loop.create_connection(factory, *self._address[:2], ssl=self._ssl, server_hostname=hostname)

    async def _prepare(self) -> None:
        target = self.config.target
        if target.tls:
            self._ssl = ssl.create_default_context()
            if self.config.insecure:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        try:
            infos = await asyncio.wait_for(
                self.loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM), self.config.timeout
            )
        except (socket.gaierror, asyncio.TimeoutError) as exc:
            raise LoadTestError(f"cannot resolve {target.host!r}: {getattr(exc, 'strerror', None) or exc}") from None
        self._address = infos[0][4]
        try:
            transport, _ = await asyncio.wait_for(self.connect(asyncio.Protocol), self.config.timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            reason = connect_error_kind(exc).replace("_", " ")
            raise LoadTestError(f"cannot connect to {target.url()}: {reason} ({exc or 'no answer'})") from None
        transport.close()

    async def run(self) -> RunResult:
        """Check the target is reachable, wait for ``start_at``, run the warm-up, then the measured phase."""
        self.loop = asyncio.get_running_loop()
        await self._prepare()
        config = self.config
        # Waiting for --start-at in short steps: Ctrl-C (stop) ends the wait too.
        while config.start_at is not None and not self.stopped and time.time() < config.start_at:
            await asyncio.sleep(min(config.start_at - time.time(), WATCHDOG_TICK))
        started_at = datetime.now(timezone.utc)
        # Users keep their number in the whole run: a share has the users k with k in its stripe.
        self.users = [User(self, k) for k in range(config.peak_users) if config.share.includes(k)]
        if config.open_loop and not self.users:
            self.users = [User(self, config.share.offset)]
        deadline = self.loop.call_later(config.deadline(RUN_GRACE), self.stop, STOP_DEADLINE)
        warmup = 0
        warmup_by_name: dict[str, int] = {}
        try:
            if config.warmup and self.users:
                share, rest = divmod(config.share.count(config.warmup), len(self.users))
                per_user = {user.index: share + (i < rest) for i, user in enumerate(self.users)}
                await self._phase("warmup", ClosedLoop(config, self.users, per_user))
                warmup = self.recorder.completed
                for request, count in Counter(self.recorder.requests).items():
                    label = config.specs[request].label
                    warmup_by_name[label] = warmup_by_name.get(label, 0) + count
            self._zero = perf_counter()
            if config.start_at is not None:
                self._zero -= time.time() - config.start_at
            self.recorder = Recorder()
            if not self.stopped:
                await self._phase("test", self._measured_source())
        finally:
            deadline.cancel()
            self.recorder.finished = self.recorder.finished or perf_counter()
            for user in self.users:
                user.stop()
            end = perf_counter() + CLOSE_GRACE
            while self.open_connections > 0 and perf_counter() < end:
                await asyncio.sleep(0.001)
        results = build(self.recorder, config.specs, self._zero)
        results.warmup_requests = warmup
        results.warmup_by_name = warmup_by_name
        return RunResult(config, results, started_at, self.stopped, parser_name(head=self.head), _loop_name(self.loop))

    def _measured_source(self) -> ClosedLoop | OpenLoop:
        config = self.config
        if config.open_loop:
            assert config.rate is not None
            peak = max([config.rate, *(stage.target for stage in config.stages)])
            # One second of the schedule, at least one request per connection: more would only wait to time out.
            return OpenLoop(max(len(self.users), round(peak / config.share.modulus)))
        per_user = None if config.requests is None else {user.index: config.requests for user in self.users}
        return ClosedLoop(config, self.users, per_user)

    async def _phase(self, name: str, source: ClosedLoop | OpenLoop) -> None:
        self.phase = name
        self._source = source
        self._idle = list(self.users)
        self._done = self.loop.create_future()
        self.recorder = Recorder()
        helpers: list[Coroutine[Any, Any, None]] = [self._watchdog(), self._progress(name)]
        if isinstance(source, OpenLoop):
            helpers.append(self._schedule(source))
        else:
            source.started = self.recorder.started
            if source.end is not None:
                source.end = source.started + (self.config.run_duration or 0.0)
            if self.config.stages:
                source.exhausted = False
                helpers.append(self._ramp(source))
            self._wake_idle()
        tasks = [self.loop.create_task(helper) for helper in helpers]
        for task in tasks:
            task.add_done_callback(self._helper_done)
        try:
            if self.users:
                self._check_done()
                await self._done
        finally:
            self.recorder.finished = perf_counter()
            for task in tasks:
                task.remove_done_callback(self._helper_done)
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _helper_done(self, task: asyncio.Task[None]) -> None:
        # A helper that fails would leave the run waiting for it: end the run with its error instead.
        if not task.cancelled() and task.exception() is not None and self._done and not self._done.done():
            self._done.set_exception(task.exception())  # type: ignore[arg-type]

    def _wake_idle(self) -> None:
        idle, self._idle = self._idle, []
        for user in idle:
            self.on_user_free(user)

    def on_user_free(self, user: User) -> None:
        """A user finished a request: give it the next one, or park it."""
        while not self.stopped:
            job = self._source.take(user)
            if job is None:
                break
            scheduled, request = job
            if scheduled is not None and perf_counter() > scheduled + self.config.timeout:
                # It waited in the backlog past its deadline: it could not be started in time.
                self.recorder.record_dropped(request, perf_counter())
                continue
            user.dispatch(scheduled, request)
            return
        self._idle.append(user)
        self._check_done()

    def _check_done(self) -> None:
        finished = self.stopped or (self._source.exhausted and len(self._idle) == len(self.users))
        if finished and self._done is not None and not self._done.done():
            self._done.set_result(None)

    def stop(self, reason: str = STOP_INTERRUPTED) -> None:
        """End the run now: requests in flight are abandoned, what finished is reported."""
        if self.stopped is None:
            self.stopped = reason
        for user in self.users:
            user.stop()
        self._idle = list(self.users)
        self._check_done()

    def check_invariant(self) -> None:
        """Every user is exactly one of idle, connecting or in flight, and the engine agrees (tests call this)."""
        idle = {id(user) for user in self._idle}
        assert len(idle) == len(self._idle), "a user is parked twice"
        for user in self.users:
            assert user.state in (IDLE, CONNECTING, IN_FLIGHT), f"user {user.index}: unknown state {user.state}"
            assert (user.state == IDLE) == (id(user) in idle), f"user {user.index} is {user.state} but parked"
            assert (user.state == CONNECTING) == (user.task is not None), f"user {user.index}: connect task"
            if user.state == IN_FLIGHT:
                assert user.conn is not None, f"user {user.index} in flight without a connection"

    async def _schedule(self, source: OpenLoop) -> None:
        share = self.config.share
        mix_pick = Mix([spec.weight for spec in self.config.specs]).pick
        start = self.recorder.started
        for offset, k in schedule(self.config):
            if self.stopped:
                break
            if not share.includes(k):
                continue
            due = start + offset
            delay = due - perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            job = (due, mix_pick(k))
            if self._idle:
                self._idle.pop().dispatch(*job)
            elif len(source.queue) < source.backlog:
                source.queue.append(job)
            else:
                self.recorder.record_dropped(job[1], perf_counter())
        # A timed run is over: what has not started by now could not be started on time.
        now = perf_counter()
        while source.queue and self.config.run_duration is not None:
            self.recorder.record_dropped(source.queue.popleft()[1], now)
        source.exhausted = True
        self._check_done()

    async def _ramp(self, source: ClosedLoop) -> None:
        while source.end is None or perf_counter() < source.end:
            await asyncio.sleep(WATCHDOG_TICK)
            self._wake_idle()
        source.exhausted = True
        self._check_done()

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(min(WATCHDOG_TICK, self.config.timeout / 4))
            now = perf_counter()
            for user in self.users:
                user.expire(now)
            if self.check_invariant_every_tick:
                self.check_invariant()
            if self.on_tick is not None:
                self.on_tick(self)

    async def _progress(self, phase: str) -> None:
        if self.on_progress is None:
            return
        config = self.config
        expected = config.share.count(config.warmup) if phase == "warmup" else config.share_requests
        duration = None if phase == "warmup" else config.run_duration
        specs, seen, failing = config.specs, 0, 0
        while True:
            await asyncio.sleep(self.progress_interval)
            recorder = self.recorder
            # Failing statuses are counted over the responses added since the last snapshot only.
            statuses, requests = recorder.statuses, recorder.requests
            failing += sum(not specs[requests[i]].is_success(statuses[i]) for i in range(seen, len(statuses)))
            seen = len(statuses)
            failed = failing + len(recorder.errors) + len(recorder.dropped)
            elapsed = perf_counter() - recorder.started
            done = recorder.completed + len(recorder.dropped)
            self.on_progress(Progress(phase, done, failed, elapsed, expected, duration))


def _loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
