"""gunicorn's configuration under ``loadtest --serve`` (``-c python:django_prodkit.loadtest.serve_config``).

It sets nothing of gunicorn's; it makes sure a request that fails with an exception leaves its traceback in the
server's output (which ``--serve-log`` keeps and a failed run quotes). Django's default logging shows them only
with ``DEBUG = True``, so a project without its own ``LOGGING`` would lose them; a project whose logging already
writes them somewhere gets no second copy.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

REQUEST_LOGGER = "django.request"


class UnshownErrors(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes an error to stderr unless another handler on its way up already writes it to a stream or file."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record when no other handler shows it."""
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None:
            for handler in logger.handlers:
                shows = handler is not self and isinstance(handler, logging.StreamHandler)
                if shows and record.levelno >= handler.level and handler.filter(record):
                    return
            logger = logger.parent if logger.propagate else None
        super().emit(record)


def post_worker_init(worker: Any) -> None:
    """gunicorn hook: the application (and so Django's logging, which resets this logger) is loaded by now."""
    handler = UnshownErrors(sys.stderr)
    handler.setLevel(logging.ERROR)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger(REQUEST_LOGGER).addHandler(handler)
