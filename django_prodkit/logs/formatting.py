"""Log lines: the request-id filter, the JSON and console formatters, and ``configure_logging``.

Every line carries the ids of the current unit of work, read from :mod:`django_prodkit.context`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from django_prodkit.context.ids import get_request_id, last_finished_in_thread
from django_prodkit.context.trace import get_span_id, get_trace_id
from django_prodkit.context.work import get_work_fields
from django_prodkit.logs.lines import JSON_ENCODERS, SecondClock, encode_lenient, json_default, line_encoder

#: Attributes every ``LogRecord`` has; anything else on a record is a field to render.
_RECORD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "request", "server_time", "taskName"}
)

#: The attribute that carries a structlog event dict through the stdlib logging machinery.
STRUCTLOG_FIELDS = "_prodkit_fields"

#: The logger of Django's development server (``runserver``), one line per request after its response.
DEV_SERVER_LOGGER = "django.server"

#: The output formats :func:`configure_logging` accepts.
LOG_FORMATS = ("json", "console")


class RequestIDFilter(logging.Filter):
    """Adds ``request_id`` (``None`` outside a request) to every record that lacks one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id_of(record)
        return True


def _request_id_of(record: logging.LogRecord) -> str | None:
    # Django logs a 4xx/5xx response a view returned (django.request) after the middleware has finished and
    # the ContextVar is reset; such records carry the request itself, which RequestIDMiddleware labelled.
    request_id = get_request_id()
    if request_id is None:
        request_id = getattr(record.__dict__.get("request"), "request_id", None)
    if request_id is None and record.name == DEV_SERVER_LOGGER:
        # runserver logs each request once the response is sent, in the thread that served it.
        request_id = last_finished_in_thread()
    return request_id if isinstance(request_id, str) else None


#: The fields every JSON line starts with; extra fields of the same name are renamed ``extra_<name>``.
_CORE_FIELDS = frozenset({"timestamp", "level", "logger", "event"})

#: Record attributes that are not fields: ``LogRecord``'s own and the carrier of structlog's fields.
_NOT_FIELDS = _RECORD_ATTRS | {STRUCTLOG_FIELDS}


def _add_fields(payload: dict[str, Any], record: logging.LogRecord, renamed: frozenset[str]) -> dict[str, Any]:
    """``payload`` with the record's fields added, a field named in ``renamed`` as ``extra_<name>``.

    The fields: the record's extra attributes, structlog's event fields, ``request_id``, the running task's or
    command's ids, and the trace and span ids. One pass into one dict: this runs for every line.
    """
    attrs = record.__dict__
    for key, value in attrs.items():
        if key not in _NOT_FIELDS:
            payload[f"extra_{key}" if key in renamed else key] = value
    structlog_fields = attrs.get(STRUCTLOG_FIELDS)
    if structlog_fields:
        for key, value in structlog_fields.items():
            payload[f"extra_{key}" if key in renamed else key] = value
    if payload.get("request_id") is None:
        payload["request_id"] = _request_id_of(record)
    work = get_work_fields()
    if work is not None:
        # A task's or command's ids; fields the line set itself win.
        for key, value in work.items():
            payload.setdefault(key, value)
    if "trace_id" not in payload:
        trace_id = get_trace_id()
        if trace_id is not None:
            payload["trace_id"] = trace_id
            span_id = get_span_id()
            if span_id is not None:
                payload["span_id"] = span_id
    return payload


class JSONFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, event, request_id and every extra field.

    ``json_encoder`` picks the encoder as :func:`configure_logging`'s argument of that name does.
    """

    def __init__(self, *args: Any, json_encoder: str = "auto", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = SecondClock()
        self._encode = line_encoder(json_encoder)

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "timestamp": self._clock.timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        # A field may not forge the level, logger, time or event that alerts rely on: it is kept, renamed.
        _add_fields(payload, record, _CORE_FIELDS)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        try:
            return self._encode(payload)
        except (TypeError, ValueError, RecursionError):
            # Non-string dict keys, NaN or infinity, a cycle: write what can be written rather than lose the line.
            return encode_lenient(payload)


def _console_value(value: Any) -> str:
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, default=json_default)
        except (TypeError, ValueError):
            text = repr(value)
    if not text or any(c.isspace() or not c.isprintable() or c in "\"'=" for c in text):
        return repr(text)
    return text


class ConsoleFormatter(logging.Formatter):
    """Readable one-line output for development: time, level, logger, event, then ``key=value`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        parts = [f"{clock}.{int(record.msecs):03d}", f"{record.levelname:<7}", f"{record.name}:", record.getMessage()]
        parts.extend(f"{key}={_console_value(value)}" for key, value in _add_fields({}, record, frozenset()).items())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def _to_stdlib(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Hand a structlog event to the stdlib logger, its fields kept apart from ``LogRecord``'s own."""
    kwargs: dict[str, Any] = {"msg": event_dict.pop("event", "")}
    for key in ("exc_info", "stack_info"):
        if key in event_dict:
            kwargs[key] = event_dict.pop(key)
    kwargs["extra"] = {STRUCTLOG_FIELDS: dict(event_dict)}
    return (), kwargs


def configure_logging(
    *,
    fmt: str = "json",
    level: str = "INFO",
    loggers: Mapping[str, Mapping[str, Any]] | None = None,
    json_encoder: str = "auto",
) -> dict[str, Any]:
    """Configure structlog and return a ``LOGGING`` dict for Django's settings.

    Both structlog events and stdlib records (Django's own ``django.request`` and ``django.server``
    included) go to one stdout handler, as JSON lines (``fmt="json"``, for production) or readable
    console lines (``fmt="console"``, for development), each with the current ``request_id``.
    ``loggers`` adds or overrides entries of the returned ``LOGGING["loggers"]``. ``json_encoder="auto"``
    writes JSON lines with orjson when it is installed (the ``[orjson]`` extra), ``"json"`` always with the
    standard library, ``"orjson"`` requires it.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"configure_logging(fmt={fmt!r}): use one of {', '.join(LOG_FORMATS)}.")
    level = level.upper()
    if not isinstance(logging.getLevelName(level), int):
        raise ValueError(f"configure_logging(level={level!r}): not a logging level name.")
    if json_encoder not in JSON_ENCODERS:
        raise ValueError(f"configure_logging(json_encoder={json_encoder!r}): use one of {', '.join(JSON_ENCODERS)}.")
    line_encoder(json_encoder)  # json_encoder="orjson" without orjson fails here, not in dictConfig
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.StackInfoRenderer(),
            _to_stdlib,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "django_prodkit.logging.RequestIDFilter"}},
        "formatters": {
            "json": {"()": "django_prodkit.logging.JSONFormatter", "json_encoder": json_encoder},
            "console": {"()": "django_prodkit.logging.ConsoleFormatter"},
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "filters": ["request_id"],
                "formatter": fmt,
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            name: {"handlers": [], "level": level, "propagate": True}
            for name in ("django", "django.server", "django.request", "django_prodkit")
        },
    }
    config["loggers"].update(loggers or {})
    return config
