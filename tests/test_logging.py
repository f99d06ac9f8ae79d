from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.config
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
import structlog
from django.contrib.auth.models import User
from django.test import AsyncClient, Client
from django.utils.log import DEFAULT_LOGGING

from django_prodkit.context.trace import reset_trace_id, set_trace_id
from django_prodkit.context.work import reset_work_fields, set_work_fields
from django_prodkit.logging import (
    ConsoleFormatter,
    JSONFormatter,
    RequestIDFilter,
    access_log_fields,
    configure_logging,
    write_access_line,
)
from django_prodkit.logs import lines as json_lines
from django_prodkit.request_id import reset_request_id, set_request_id

ReadLines = Callable[[], list[str]]


def _restore_logging() -> None:
    root = logging.getLogger()
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    logging.config.dictConfig(DEFAULT_LOGGING)
    structlog.reset_defaults()


def _collect(config: dict[str, Any]) -> Iterator[ReadLines]:
    """Apply a ``configure_logging`` config and collect what its stdout handler writes."""
    logging.config.dictConfig(config)
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    handler.setStream(buffer)

    def read() -> list[str]:
        lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
        buffer.seek(0)
        buffer.truncate()
        return lines

    yield read
    _restore_logging()


@pytest.fixture
def log_output(request: pytest.FixtureRequest) -> Iterator[ReadLines]:
    """What ``configure_logging`` (JSON unless parametrized) writes."""
    yield from _collect(configure_logging(fmt=getattr(request, "param", "json"), level="INFO"))


@pytest.fixture(params=["json", "orjson"])
def json_encoder(request: pytest.FixtureRequest) -> str:
    """Each encoder of JSON lines: the standard library's and the optional orjson."""
    return str(request.param)


@pytest.fixture
def encoded_output(json_encoder: str) -> Iterator[ReadLines]:
    """What ``configure_logging(fmt="json", json_encoder=...)`` writes, for each encoder."""
    yield from _collect(configure_logging(fmt="json", level="INFO", json_encoder=json_encoder))


def records(read: ReadLines) -> list[dict[str, Any]]:
    return [json.loads(line) for line in read()]


@pytest.mark.django_db
def test_view_log_lines_carry_the_request_id(client: Client, log_output: ReadLines) -> None:
    response = client.get("/api/v1/hello/", headers={"X-Request-ID": "req-123"})
    lines = records(log_output)
    view_line = next(r for r in lines if r["logger"] == "tests.views")
    assert view_line["event"] == "hello from a view"
    assert view_line["request_id"] == "req-123" == response["X-Request-ID"]
    assert view_line["level"] == "info"


def test_structlog_events_carry_the_request_id_and_fields(client: Client, log_output: ReadLines) -> None:
    client.get("/api/v1/items/blue-shoe/", headers={"X-Request-ID": "req-456"})
    line = next(r for r in records(log_output) if r["event"] == "item viewed")
    assert line["slug"] == "blue-shoe"
    assert line["request_id"] == "req-456"
    assert structlog.contextvars.get_contextvars() == {}


def test_access_log_event_has_route_not_raw_path(client: Client, log_output: ReadLines) -> None:
    response = client.get("/api/v1/items/red-hat/")
    access = next(r for r in records(log_output) if r["logger"] == "django_prodkit.access")
    assert access["event"] == "http_request"
    assert access["method"] == "GET"
    assert access["route"] == "/api/v1/items/<slug:slug>/"
    assert access["path"] == "/api/v1/items/red-hat/"
    assert access["status"] == 200
    assert access["duration_ms"] > 0
    assert access["user_id"] is None
    assert access["request_id"] == response["X-Request-ID"]


def test_access_log_duration_covers_the_view(client: Client, log_output: ReadLines) -> None:
    client.get("/api/v1/slow/")
    access = next(r for r in records(log_output) if r["logger"] == "django_prodkit.access")
    # The view sleeps 30 ms: a lower bound that holds however loaded the machine is.
    assert access["duration_ms"] >= 30.0


def test_unmatched_paths_and_unknown_methods_are_collapsed(client: Client, log_output: ReadLines) -> None:
    client.generic("BREW", "/no/such/path/")
    access = next(r for r in records(log_output) if r["logger"] == "django_prodkit.access")
    assert access["route"] == "<unmatched>"
    assert access["method"] == "OTHER"
    assert access["status"] == 404


def test_django_request_errors_use_the_same_format(client: Client, log_output: ReadLines) -> None:
    client.raise_request_exception = False
    response = client.get("/api/v1/boom/")
    error = next(r for r in records(log_output) if r["logger"] == "django.request")
    assert error["level"] == "error"
    assert error["request_id"] == response["X-Request-ID"]
    assert "RuntimeError: boom" in error["exception"]
    assert error["status_code"] == 500


def test_django_logs_a_returned_4xx_with_the_request_id(client: Client, log_output: ReadLines) -> None:
    response = client.get("/api/v1/bad-request/")
    assert response.status_code == 400
    warning = next(r for r in records(log_output) if r["logger"] == "django.request")
    assert warning["event"] == "Bad Request: /api/v1/bad-request/"
    assert warning["request_id"] == response["X-Request-ID"]


def test_a_streaming_body_logs_with_the_request_id(client: Client, log_output: ReadLines) -> None:
    response = client.get("/api/v1/streamed/", headers={"X-Request-ID": "stream-1"})
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines() == ["0,stream-1", "1,stream-1", "2,stream-1"]
    chunks = [r for r in records(log_output) if r["event"].startswith("streaming chunk")]
    assert [r["request_id"] for r in chunks] == ["stream-1"] * 3
    assert structlog.contextvars.get_contextvars() == {}


def test_an_async_streaming_body_logs_with_the_request_id(log_output: ReadLines) -> None:
    async def fetch() -> tuple[str, str]:
        response = await AsyncClient().get("/api/v1/async-streamed/", headers={"X-Request-ID": "astream-1"})
        body = b"".join([chunk async for chunk in response.streaming_content])
        return response["X-Request-ID"], body.decode()

    header, body = asyncio.run(fetch())
    assert header == "astream-1"
    assert body.splitlines() == ["0,astream-1", "1,astream-1", "2,astream-1"]
    chunks = [r for r in records(log_output) if r["event"].startswith("async streaming chunk")]
    assert [r["request_id"] for r in chunks] == ["astream-1"] * 3


def test_json_fields_cannot_forge_the_core_fields_and_odd_values_are_kept() -> None:
    record = _record(level="debug", logger="django.security", weird={1: float("nan")}, ratio=float("inf"))
    payload = json.loads(JSONFormatter().format(record))
    assert payload["level"] == "info"
    assert payload["logger"] == "t"
    assert payload["extra_level"] == "debug"
    assert payload["extra_logger"] == "django.security"
    assert payload["weird"] == {"1": "nan"}
    assert payload["ratio"] == "inf"
    assert "weird=" in ConsoleFormatter().format(_record(weird={1: 2}))


def test_rejected_incoming_id_never_reaches_a_log_line(client: Client, log_output: ReadLines) -> None:
    evil = "evil\r\nINJECTED line"
    client.get("/api/v1/hello/", HTTP_X_REQUEST_ID=evil)
    output = "\n".join(log_output())
    assert "INJECTED" not in output
    assert "evil" not in output


@pytest.mark.django_db
def test_access_log_has_user_id_only_when_already_loaded(client: Client, log_output: ReadLines) -> None:
    user = User.objects.create_user("alice", password="pw-alice-123")
    client.force_login(user)
    log_output()
    client.get("/api/v1/hello/")
    access = next(r for r in records(log_output) if r["logger"] == "django_prodkit.access")
    assert access["user_id"] is None


@pytest.mark.django_db
def test_access_log_does_not_query_for_the_user(
    client: Client, log_output: ReadLines, django_assert_num_queries: Any
) -> None:
    client.force_login(User.objects.create_user("bob", password="pw-bob-12345"))
    with django_assert_num_queries(0):
        client.get("/api/v1/hello/")


@pytest.mark.django_db
def test_access_log_reports_a_loaded_user(client: Client, log_output: ReadLines, settings: Any) -> None:
    user = User.objects.create_user("carol", password="pw-carol-1234")
    client.force_login(user)
    log_output()
    client.get("/api/v1/whoami/")
    access = next(r for r in records(log_output) if r["logger"] == "django_prodkit.access")
    assert access["user_id"] == user.pk


def test_excluded_paths_and_views_are_not_logged(client: Client, log_output: ReadLines, settings: Any) -> None:
    settings.PRODKIT = {"ACCESS_LOG_EXCLUDE_PATHS": ["/api/v1/hello/"], "ACCESS_LOG_EXCLUDE_VIEWS": ["item"]}
    client.get("/api/v1/hello/")
    client.get("/api/v1/items/x/")
    client.get("/api/v1/exposed/")
    routes = [r["route"] for r in records(log_output) if r["logger"] == "django_prodkit.access"]
    assert routes == ["/api/v1/exposed/"]


@pytest.mark.parametrize("log_output", ["console"], indirect=True)
def test_console_format_is_readable_and_has_the_id(client: Client, log_output: ReadLines) -> None:
    client.get("/api/v1/items/a-b/", headers={"X-Request-ID": "console-1"})
    line = next(line for line in log_output() if "http_request" in line)
    assert "INFO" in line
    assert "django_prodkit.access:" in line
    assert "route=/api/v1/items/<slug:slug>/" in line
    assert "request_id=console-1" in line
    assert not line.startswith("{")


def _record(**extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "msg %s", ("x",), None)
    record.__dict__.update(extra)
    return record


def test_filter_adds_the_current_id_outside_and_inside_a_request() -> None:
    record = _record()
    RequestIDFilter().filter(record)
    assert record.request_id is None  # type: ignore[attr-defined]
    token = set_request_id("inside")
    try:
        record = _record()
        RequestIDFilter().filter(record)
        assert record.request_id == "inside"  # type: ignore[attr-defined]
    finally:
        reset_request_id(token)


def test_json_formatter_renders_unserialisable_fields_and_exceptions() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    record.__dict__["obj"] = object()
    payload = json.loads(JSONFormatter().format(record))
    assert payload["event"] == "failed"
    assert payload["obj"].startswith("<object object")
    assert "ValueError: bad" in payload["exception"]


def test_console_formatter_quotes_values_with_spaces() -> None:
    line = ConsoleFormatter().format(_record(note="two words", count=3))
    assert "note='two words'" in line
    assert "count=3" in line
    assert "msg x" in line


@pytest.mark.parametrize(("kwargs", "message"), [({"fmt": "xml"}, "fmt='xml'"), ({"level": "LOUD"}, "level='LOUD'")])
def test_configure_logging_rejects_bad_arguments(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        configure_logging(**kwargs)
    structlog.reset_defaults()


def test_configure_logging_accepts_extra_loggers() -> None:
    config = configure_logging(loggers={"myapp": {"level": "DEBUG"}})
    structlog.reset_defaults()
    assert config["loggers"]["myapp"] == {"level": "DEBUG"}
    assert config["loggers"]["django.server"]["propagate"] is True


# --- the fast path of the JSON line (issue 17) ------------------------------------------------------------------


def _access_line(read: ReadLines, fields: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    write_access_line(logging.getLogger("django_prodkit.access"), fields)
    (line,) = read()
    return line, json.loads(line)


def test_access_line_is_the_expected_json_field_by_field(encoded_output: ReadLines, json_encoder: str) -> None:
    request_token = set_request_id("req-fast-1")
    trace_token = set_trace_id("1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8")
    try:
        before = time.time()
        line, payload = _access_line(
            encoded_output, access_log_fields("GET", "/api/v1/items/<slug:slug>/", "/api/v1/items/é/", 201, 1.23456, 7)
        )
        after = time.time()
    finally:
        reset_trace_id(trace_token)
        reset_request_id(request_token)
    expected = {
        "timestamp": payload["timestamp"],
        "level": "info",
        "logger": "django_prodkit.access",
        "event": "http_request",
        "method": "GET",
        "route": "/api/v1/items/<slug:slug>/",
        "path": "/api/v1/items/é/",
        "status": 201,
        "duration_ms": 1.235,
        "user_id": 7,
        "request_id": "req-fast-1",
        "trace_id": "1-5759e988-bd862e3fe1be46a994272793",
        "span_id": "53995c3f42cd8ad8",
    }
    assert list(payload) == list(expected)
    for key, value in expected.items():
        assert (key, payload[key]) == (key, value)
    # The text the stdlib encoder writes (orjson: without spaces), non-ASCII kept as it is.
    separators = (", ", ": ") if json_encoder == "json" else (",", ":")
    assert line == json.dumps(expected, ensure_ascii=False, separators=separators)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", payload["timestamp"])
    assert before - 0.001 <= datetime.fromisoformat(payload["timestamp"]).timestamp() <= after


def test_access_line_goes_through_the_loggers_filters_and_handlers(log_output: ReadLines) -> None:
    logger = logging.getLogger("django_prodkit.access")
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Keep()
    logger.addHandler(handler)
    try:
        _access_line(log_output, access_log_fields("POST", "/r/", "/r/", 200, 1.0, None))
        (record,) = seen
        assert (record.levelno, record.getMessage(), record.route) == (logging.INFO, "http_request", "/r/")  # type: ignore[attr-defined]
        assert record.funcName == "write_access_line"
        assert record.pathname.endswith(os.path.join("logs", "access.py"))
        logger.addFilter(lambda record: False)
        write_access_line(logger, access_log_fields("POST", "/r/", "/r/", 200, 1.0, None))
        assert log_output() == []
        assert len(seen) == 1
    finally:
        logger.removeHandler(handler)
        logger.filters.clear()


def test_access_line_keeps_forged_core_fields_odd_keys_and_values(encoded_output: ReadLines) -> None:
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    fields = {
        **access_log_fields("GET", "/r/", "/r/", 200, 1.0, None),
        "level": "critical",
        "timestamp": "1970-01-01",
        "event": "forged",
        "nan": float("nan"),
        "inf": float("-inf"),
        "keys": {(1, 2): "tuple key", 3: "int key"},
        "obj": object(),
        "cycle": cycle,
    }
    _, payload = _access_line(encoded_output, fields)
    assert (payload["level"], payload["event"], payload["logger"]) == ("info", "http_request", "django_prodkit.access")
    assert payload["timestamp"] != "1970-01-01"
    assert (payload["extra_level"], payload["extra_timestamp"], payload["extra_event"]) == (
        "critical",
        "1970-01-01",
        "forged",
    )
    assert (payload["nan"], payload["inf"]) == ("nan", "-inf")
    assert payload["keys"] == {"(1, 2)": "tuple key", "3": "int key"}
    assert payload["obj"].startswith("<object object")
    assert "self" in payload["cycle"]
    assert payload["route"] == "/r/"


def test_json_timestamps_match_datetime_across_seconds() -> None:
    formatter = JSONFormatter()
    for created in (1700000000.25, 1700000000.5, 1700000003.125, 1700000000.0, 1699999999.875):
        record = _record()
        record.created = created
        expected = datetime.fromtimestamp(created, tz=timezone.utc).isoformat(timespec="milliseconds")
        assert json.loads(formatter.format(record))["timestamp"] == expected


def test_structlog_event_and_stdlib_record_have_the_same_shape(encoded_output: ReadLines) -> None:
    structlog.get_logger("same.shape").info("hello", colour="blue")
    logging.getLogger("same.shape").info("hello", extra={"colour": "blue"})
    first, second = records(encoded_output)
    assert {**first, "timestamp": None} == {**second, "timestamp": None}


def test_the_portable_stdlib_encoder_writes_the_same_and_refuses_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    payload = {"a": "é", "b": 1.5, "c": [None, True], "d": object()}
    expected = json.dumps(payload, default=str, ensure_ascii=False)
    assert json_lines.encode_strict(payload) == expected
    with pytest.raises(ValueError, match="Out of range float"):
        json_lines.encode_strict({"x": float("nan")})

    def changed_signature(markers: Any) -> None:
        raise AssertionError("called with json.encoder's current arguments, it raises TypeError first")

    monkeypatch.setattr(json.encoder, "c_make_encoder", changed_signature)
    changed = json_lines._strict_encoder()
    # Without the C accelerator: what a Python built without _json does, and what the portable encoder falls to.
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    pure = json_lines._strict_encoder()
    for encode in (changed, pure):
        assert encode(payload) == expected
        with pytest.raises(ValueError, match="Out of range float"):
            encode({"x": float("nan")})


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), 2**70, [1, {"a": float("-inf")}], {1: "int key"}, "\ud800", object()],
    ids=["nan", "inf", "bigint", "nested", "int-key", "surrogate", "object"],
)
def test_orjson_lines_are_the_stdlib_lines_for_odd_values(value: Any) -> None:
    record = _record(value=value)
    record.created = 1700000000.5
    stdlib = json.loads(JSONFormatter(json_encoder="json").format(record))
    fast = json.loads(JSONFormatter(json_encoder="orjson").format(record))
    assert fast == stdlib
    assert "value" in fast


def test_auto_is_the_stdlib_encoder_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "orjson", None)  # what a failed import leaves
    assert json_lines.line_encoder("auto") is json_lines.encode_strict
    with pytest.raises(ImportError, match=r"django-prodkit\[orjson\]"):
        json_lines.line_encoder("orjson")
    with pytest.raises(ImportError, match="orjson"):
        configure_logging(json_encoder="orjson")
    structlog.reset_defaults()
    record = _record(ratio=float("nan"))
    assert json.loads(JSONFormatter().format(record))["ratio"] == "nan"


def test_configure_logging_rejects_an_unknown_encoder() -> None:
    with pytest.raises(ValueError, match="json_encoder='ujson'"):
        configure_logging(json_encoder="ujson")
    with pytest.raises(ValueError, match="json_encoder='ujson'"):
        JSONFormatter(json_encoder="ujson")


def test_json_and_console_lines_carry_the_works_ids_and_a_lines_own_field_wins(encoded_output: ReadLines) -> None:
    token = set_work_fields({"task_id": "task-9", "task_name": "blog.notify"})
    try:
        logging.getLogger("work").info("ran", extra={"task_name": "own"})
        console = ConsoleFormatter().format(_record())
    finally:
        reset_work_fields(token)
    (line,) = records(encoded_output)
    assert (line["task_id"], line["task_name"]) == ("task-9", "own")
    assert "task_id=task-9" in console
