"""Keeping the request id current while a streamed response body is produced, after the middleware returned."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator

from structlog.contextvars import bind_contextvars, reset_contextvars

from django_prodkit.context.ids import reset_request_id, set_request_id


def iterate_with_request_id(chunks: Iterable[bytes], request_id: str) -> Iterator[bytes]:
    """Yield ``chunks`` with ``request_id`` current while each one is produced.

    A streaming body runs after the middleware has returned, so its log lines would otherwise have no id.
    """
    iterator = iter(chunks)
    while True:
        token = set_request_id(request_id)
        bound = bind_contextvars(request_id=request_id)
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        finally:
            reset_contextvars(**bound)
            reset_request_id(token)
        yield chunk


async def aiterate_with_request_id(chunks: AsyncIterable[bytes], request_id: str) -> AsyncIterator[bytes]:
    """The async twin of :func:`iterate_with_request_id`."""
    iterator = chunks.__aiter__()
    while True:
        token = set_request_id(request_id)
        bound = bind_contextvars(request_id=request_id)
        try:
            chunk = await iterator.__anext__()
        except StopAsyncIteration:
            return
        finally:
            reset_contextvars(**bound)
            reset_request_id(token)
        yield chunk
