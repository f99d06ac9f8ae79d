"""``span(name, **attributes)``: a span of the application's own work, whichever tracing backend is on.

For code that does not want to depend on the OpenTelemetry API or aws-xray-sdk: an INTERNAL span
(OpenTelemetry) or a subsegment (X-Ray) under the current request's or task's span, recording an exception
that leaves the block. With tracing off, or outside any traced work, it records nothing and costs little.
"""

from __future__ import annotations

from types import TracebackType

from django.core.exceptions import ImproperlyConfigured

from django_prodkit.tracing.backend import get_tracer
from django_prodkit.tracing.base import NOOP_SPAN, AttributeValue, Span


class SpanBlock:
    """The context manager :func:`span` returns: ``with`` and ``async with`` both work; yields the span."""

    __slots__ = ("_attributes", "_name", "_span")

    def __init__(self, name: str, attributes: dict[str, AttributeValue]) -> None:
        self._name = name
        self._attributes = attributes
        self._span: Span = NOOP_SPAN

    def __enter__(self) -> Span:
        try:
            tracer = get_tracer()
        except ImproperlyConfigured:
            tracer = None  # prodkit.E002/E003 report it
        if tracer is not None:
            self._span = tracer.start_span(self._name, "internal", attributes=self._attributes)
        return self._span

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        span, self._span = self._span, NOOP_SPAN
        if exc is not None:
            span.record_exception(exc)
        span.end(error=exc is not None)

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, traceback)


def span(name: str, **attributes: AttributeValue) -> SpanBlock:
    """A span named ``name`` with ``attributes`` around a block: ``with span("render", items=3) as s: ...``.

    Works with ``async with`` too. The span is the current one inside the block (log lines carry its id,
    outbound calls are its children); an exception leaving the block is recorded and marks it as an error.
    """
    return SpanBlock(name, attributes)
