"""The load engine: virtual users on one event loop, closed-loop or on an open-loop schedule."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timezone
from time import perf_counter
from typing import Any

from django_prodkit.loadtest.client import User, build_request, connect_error_kind
from django_prodkit.loadtest.config import LoadTestConfig
from django_prodkit.loadtest.parser import parser_name
from django_prodkit.loadtest.sources import ClosedLoop, OpenLoop
from django_prodkit.loadtest.stats import Recorder, Summary, summarize

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is optional and absent on Windows
    uvloop = None  # type: ignore[assignment]

WATCHDOG_TICK = 0.05
CLOSE_GRACE = 1.0
SUCCESS_RANGE = frozenset(range(200, 400))


class LoadTestError(Exception):
    """Something prevented the test from running at all (bad host, nothing listening, TLS failure)."""


@dataclass(frozen=True)
class Progress:
    """A snapshot for the progress display."""

    phase: str
    completed: int
    failed: int
    elapsed: float
    expected: int | None


@dataclass(frozen=True)
class RunResult:
    """The outcome of a run: the measured phase's summary and how the run went."""

    config: LoadTestConfig
    summary: Summary
    started_at: datetime
    warmup_requests: int
    interrupted: bool
    parser: str
    event_loop: str


class Engine:
    """Runs one load test on the current event loop; :meth:`stop` ends it early with what was done."""

    def __init__(self, config: LoadTestConfig, on_progress: Callable[[Progress], None] | None = None) -> None:
        self.config = config
        self.on_progress = on_progress
        self.progress_interval = 1.0
        self.head = config.method == "HEAD"
        self.requests = [build_request(config, path) for path in config.paths]
        self.success_statuses = config.expect_status or SUCCESS_RANGE
        self.recorder = Recorder()
        self.open_connections = 0
        self.stopped = False
        self.loop: asyncio.AbstractEventLoop
        self.users: list[User] = []
        self._idle: list[User] = []
        self._source: ClosedLoop | OpenLoop = OpenLoop()
        self._done: asyncio.Future[None] | None = None
        self._address: tuple[Any, ...] = ()
        self._ssl: ssl.SSLContext | None = None

    async def connect(self, factory: Callable[[], asyncio.Protocol]) -> tuple[asyncio.BaseTransport, Any]:
        """Open a connection to the target (TLS for https, the name checked against the certificate)."""
        target = self.config.target
        hostname = target.host if self._ssl is not None else None
        return await self.loop.create_connection(factory, *self._address[:2], ssl=self._ssl, server_hostname=hostname)

    async def _prepare(self) -> None:
        target = self.config.target
        if target.tls:
            self._ssl = ssl.create_default_context()
            if self.config.insecure:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        try:
            infos = await self.loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise LoadTestError(f"cannot resolve {target.host!r}: {exc.strerror}") from None
        self._address = infos[0][4]
        try:
            transport, _ = await asyncio.wait_for(self.connect(asyncio.Protocol), self.config.timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            reason = connect_error_kind(exc).replace("_", " ")
            raise LoadTestError(f"cannot connect to {target.url()}: {reason} ({exc or 'no answer'})") from None
        transport.close()

    async def run(self) -> RunResult:
        """Check the target is reachable, run the warm-up, then the measured phase."""
        self.loop = asyncio.get_running_loop()
        started_at = datetime.now(timezone.utc)
        await self._prepare()
        config = self.config
        self.users = [User(self, index) for index in range(config.users)]
        warmup = 0
        try:
            if config.warmup:
                share, rest = divmod(config.warmup, config.users)
                per_user = [share + (i < rest) for i in range(config.users)]
                await self._phase("warmup", ClosedLoop(self.users, per_user, None, len(self.requests)))
                warmup = self.recorder.completed
                if self.stopped:
                    # Interrupted while warming up: nothing was measured.
                    self.recorder = Recorder()
                    self.recorder.finished = self.recorder.started
            if not self.stopped:
                await self._phase("test", self._measured_source())
        finally:
            for user in self.users:
                user.stop()
            await asyncio.gather(*(user.connecting for user in self.users if user.connecting), return_exceptions=True)
            deadline = perf_counter() + CLOSE_GRACE
            while self.open_connections > 0 and perf_counter() < deadline:
                await asyncio.sleep(0.001)
        loop_name = "uvloop" if uvloop is not None and isinstance(self.loop, uvloop.Loop) else "asyncio"
        return RunResult(
            config=config,
            summary=summarize(self.recorder, self.success_statuses),
            started_at=started_at,
            warmup_requests=warmup,
            interrupted=self.stopped,
            parser=parser_name(head=self.head),
            event_loop=loop_name,
        )

    def _measured_source(self) -> ClosedLoop | OpenLoop:
        config = self.config
        if config.rate is not None:
            return OpenLoop()
        deadline = None if config.duration is None else perf_counter() + config.duration
        per_user = None if config.requests is None else [config.requests] * config.users
        return ClosedLoop(self.users, per_user, deadline, len(self.requests))

    async def _phase(self, name: str, source: ClosedLoop | OpenLoop) -> None:
        self._source = source
        self._idle = []
        self._done = self.loop.create_future()
        self.recorder = Recorder()
        helpers = [self._watchdog(), self._progress(name)]
        if isinstance(source, OpenLoop):
            self._idle = list(self.users)
            helpers.append(self._schedule(source))
        else:
            for user in self.users:
                self.on_user_free(user)
        tasks = [self.loop.create_task(helper) for helper in helpers]
        try:
            await self._done
        finally:
            self.recorder.finished = perf_counter()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def on_user_free(self, user: User) -> None:
        """A user finished a request: give it the next one, or park it."""
        job = None if self.stopped else self._source.take(user)
        if job is not None:
            user.dispatch(*job)
            return
        self._idle.append(user)
        self._check_done()

    def _check_done(self) -> None:
        finished = self.stopped or (self._source.exhausted and len(self._idle) == len(self.users))
        if finished and self._done is not None and not self._done.done():
            self._done.set_result(None)

    def stop(self) -> None:
        """End the run now: requests in flight are abandoned, what finished is reported."""
        self.stopped = True
        for user in self.users:
            user.stop()
        self._check_done()

    async def _schedule(self, source: OpenLoop) -> None:
        config = self.config
        assert config.rate is not None
        interval = 1.0 / config.rate
        total = config.total_requests
        start = perf_counter()
        index = 0
        while total is None or index < total:
            due = start + index * interval
            if config.duration is not None and due - start >= config.duration:
                break
            now = perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
                continue
            job = (due, index % len(self.requests))
            index += 1
            if self._idle:
                self._idle.pop().dispatch(*job)
            else:
                source.queue.append(job)
        source.exhausted = True
        self._check_done()

    async def _watchdog(self) -> None:
        timeout = self.config.timeout
        while True:
            await asyncio.sleep(min(WATCHDOG_TICK, timeout / 4))
            now = perf_counter()
            for user in self.users:
                if user.in_flight and user.connecting is None and now - user.sent_at > timeout:
                    user.on_timeout()

    async def _progress(self, phase: str) -> None:
        if self.on_progress is None:
            return
        config = self.config
        expected = config.warmup if phase == "warmup" else config.total_requests
        while True:
            await asyncio.sleep(self.progress_interval)
            recorder = self.recorder
            failed = len(recorder.failure_ends) + len(recorder.error_ends)
            elapsed = perf_counter() - recorder.started
            self.on_progress(Progress(phase, recorder.completed, failed, elapsed, expected))


def run_load_test(
    config: LoadTestConfig,
    on_progress: Callable[[Progress], None] | None = None,
    *,
    use_uvloop: bool = True,
    progress_interval: float = 1.0,
) -> RunResult:
    """Run a load test to the end (or to Ctrl-C) on a new event loop, uvloop when installed."""
    engine = Engine(config, on_progress)
    engine.progress_interval = progress_interval
    loop = uvloop.new_event_loop() if use_uvloop and uvloop is not None else asyncio.new_event_loop()
    return _run_on(loop, engine, engine.run())


def _run_on(loop: asyncio.AbstractEventLoop, engine: Engine, main: Coroutine[Any, Any, RunResult]) -> RunResult:
    # Ctrl-C stops the engine cleanly so the report covers what was done; where signal handlers cannot be
    # installed (Windows, not the main thread) KeyboardInterrupt is caught instead.
    handle_signal = sys.platform != "win32" and threading.current_thread() is threading.main_thread()
    try:
        engine.loop = loop
        if handle_signal:
            loop.add_signal_handler(signal.SIGINT, engine.stop)
        task = loop.create_task(main)
        while True:
            try:
                return loop.run_until_complete(task)
            except KeyboardInterrupt:
                engine.stop()
    finally:
        if handle_signal:
            loop.remove_signal_handler(signal.SIGINT)
        with contextlib.suppress(RuntimeError):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
