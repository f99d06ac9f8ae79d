"""One engine process of ``--processes``: reads its plan from stdin, sends progress and its result to stdout.

Started as ``python -m django_prodkit.loadtest.worker`` (nothing of the parent, its threads or Django is
inherited, and no main module is re-imported); both pipes carry length-prefixed pickles between this package's
own processes. SIGINT and SIGTERM stop the engine, which still sends what it finished.
"""

from __future__ import annotations

import os
from multiprocessing.connection import Connection

from django_prodkit.loadtest.abort import AbortCheck
from django_prodkit.loadtest.outcome import LoadTestError, Progress
from django_prodkit.loadtest.runner import run_load_test

ERROR, PROGRESS, RESULT = "error", "progress", "result"


def main() -> None:
    """Run the plan sent on stdin."""
    # The pipe to the parent is fd 1; anything printed goes to stderr instead of corrupting it.
    pipe = Connection(os.dup(1))
    os.dup2(2, 1)
    config, use_uvloop, interval, abort = Connection(os.dup(0)).recv()

    def progress(snapshot: Progress) -> None:
        pipe.send((PROGRESS, snapshot))

    check = AbortCheck(abort, config.specs, config.share_requests) if abort else None
    try:
        result = run_load_test(config, progress, use_uvloop=use_uvloop, progress_interval=interval, on_tick=check)
    except LoadTestError as exc:
        pipe.send((ERROR, str(exc)))
    else:
        pipe.send((RESULT, result))
    pipe.close()


if __name__ == "__main__":
    main()
