"""Sending a Celery task makes a PRODUCER span, through the tracer interface, whose context the message carries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery, signals

from django_prodkit.tasks import celery as integration
from django_prodkit.tracing.backend import get_tracer
from tests.otlp_receiver import Receiver
from tests.test_tracing_otel import flushed, receiver  # noqa: F401 -- the fixture

pytestmark = pytest.mark.timeout(60)


def nothing() -> None:
    """The body of the tasks sent (nothing runs them)."""


@pytest.fixture
def otel(settings: Any, receiver: Receiver) -> Receiver:  # noqa: F811
    """OpenTelemetry on, sending to the test's OTLP receiver."""
    settings.PRODKIT = {"SERVICE_NAME": "blog-api", "OTEL": {"ENABLED": True, "ENDPOINT": receiver.url}}
    return receiver


@pytest.fixture
def app() -> Iterator[Celery]:
    """A real Celery app on kombu's in-memory transport: messages are published, nothing runs them."""
    celery_app = Celery("producer-test", broker="memory://", set_as_current=False)
    celery_app.conf.task_always_eager = False
    integration.connect()
    yield celery_app
    celery_app.close()


def test_sending_a_task_makes_a_producer_span_that_the_message_continues(otel: Receiver, app: Celery) -> None:
    sent: list[dict[str, Any]] = []

    def capture(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
        sent.append(dict(headers or {}))

    task = app.task(name="tests.producer.send_me")(nothing)
    signals.after_task_publish.connect(capture, weak=False)
    try:
        tracer = get_tracer()
        assert tracer is not None
        outer = tracer.start_span("handle", "consumer")  # a root, like a task run that sends another
        result = task.apply_async(routing_key="celery")
        outer.end()
    finally:
        signals.after_task_publish.disconnect(capture)
    spans = {span.name: span for span in flushed(otel)}
    producer, handle = spans["send tests.producer.send_me"], spans["handle"]
    assert producer.kind == "producer"
    assert (producer.trace_id, producer.parent_span_id) == (handle.trace_id, handle.span_id)
    assert producer.attributes == {
        "messaging.system": "celery",
        "messaging.operation": "publish",
        "messaging.destination.name": "celery",
        "task.id": result.id,
        "task.name": "tests.producer.send_me",
    }
    # The message carries the producer span's context, so the run's span is its child.
    [headers] = sent
    assert headers["prodkit"]["trace"]["traceparent"].split("-")[1:3] == [producer.trace_id, producer.span_id]
    assert integration._publishing == {}


def test_without_a_trace_sending_makes_no_span_and_keeps_nothing(otel: Receiver, app: Celery) -> None:
    task = app.task(name="tests.producer.untraced")(nothing)
    task.apply_async()
    assert flushed(otel) == []
    assert integration._publishing == {}
