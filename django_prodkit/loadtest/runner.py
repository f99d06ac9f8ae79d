"""Running the engine: on a new event loop in this process, Ctrl-C stopping it cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import Callable

from django_prodkit.loadtest.config import LoadTestConfig
from django_prodkit.loadtest.engine import Engine
from django_prodkit.loadtest.outcome import Progress, RunResult

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is optional and absent on Windows
    uvloop = None  # type: ignore[assignment]


def new_loop(use_uvloop: bool) -> asyncio.AbstractEventLoop:
    """uvloop's event loop when installed and wanted, else asyncio's."""
    return uvloop.new_event_loop() if use_uvloop and uvloop is not None else asyncio.new_event_loop()


def run_load_test(
    config: LoadTestConfig,
    on_progress: Callable[[Progress], None] | None = None,
    *,
    use_uvloop: bool = True,
    progress_interval: float = 1.0,
    on_tick: Callable[[Engine], None] | None = None,
    check_invariant: bool = False,
) -> RunResult:
    """Run a load test to the end (or to Ctrl-C, or to its deadline) on a new event loop."""
    engine = Engine(config, on_progress)
    engine.progress_interval = progress_interval
    engine.on_tick = on_tick
    engine.check_invariant_every_tick = check_invariant
    return run_engine(engine, new_loop(use_uvloop))


def run_engine(engine: Engine, loop: asyncio.AbstractEventLoop) -> RunResult:
    """Run ``engine`` on ``loop`` and close the loop; SIGINT (Ctrl-C) and SIGTERM stop the engine cleanly."""
    # Where signal handlers cannot be installed (Windows, not the main thread) KeyboardInterrupt is caught.
    handle_signals = sys.platform != "win32" and threading.current_thread() is threading.main_thread()
    signals = (signal.SIGINT, signal.SIGTERM) if handle_signals else ()
    try:
        engine.loop = loop
        for signum in signals:
            loop.add_signal_handler(signum, engine.stop)
        task = loop.create_task(engine.run())
        while True:
            try:
                return loop.run_until_complete(task)
            except KeyboardInterrupt:
                engine.stop()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        with contextlib.suppress(RuntimeError):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
