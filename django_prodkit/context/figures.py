"""Figures a producer measures for the unit of work and its consumers report, without knowing each other.

The database counter (:mod:`django_prodkit.db`) publishes each request's query figures here; the access line,
the request's span and the metrics read them. Neither side imports the other.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Protocol


class QueryFigures(Protocol):
    """The database figures of the unit of work so far."""

    @property
    def count(self) -> int:
        """How many queries it made."""

    @property
    def milliseconds(self) -> float:
        """Their total time, in milliseconds."""


_queries: ContextVar[QueryFigures | None] = ContextVar("prodkit_db_queries", default=None)


def query_figures() -> QueryFigures | None:
    """The database figures of the request being served, or ``None`` when nothing counts them."""
    return _queries.get()


def publish_query_figures(figures: QueryFigures | None) -> Token[QueryFigures | None]:
    """Make ``figures`` the current unit's; pass the returned token to :func:`unpublish_query_figures`."""
    return _queries.set(figures)


def unpublish_query_figures(token: Token[QueryFigures | None]) -> None:
    """Restore the figures that were current before :func:`publish_query_figures`."""
    _queries.reset(token)


def add_query_fields(fields: dict[str, object]) -> None:
    """Add ``db_queries`` and ``db_time_ms`` to an event's fields when the unit's queries are counted."""
    figures = _queries.get()
    if figures is not None:
        fields["db_queries"] = figures.count
        fields["db_time_ms"] = figures.milliseconds
