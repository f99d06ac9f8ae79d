"""Observers: other components (the CloudWatch publisher) that see every request the metrics count."""

from __future__ import annotations

from collections.abc import Callable

#: ``observer(method, route, status, duration_ms)``; must return at once and never raise.
Observer = Callable[[str, str, int, float], None]

_observers: list[Observer] = []


def add_observer(observer: Observer) -> None:
    """Call ``observer`` for every request that ``MetricsMiddleware`` counts (idempotent)."""
    if observer not in _observers:
        _observers.append(observer)


def remove_observer(observer: Observer) -> None:
    """Stop calling ``observer``; a no-op when it was not added."""
    if observer in _observers:
        _observers.remove(observer)


def observers() -> tuple[Observer, ...]:
    """The observers currently added, in the order they were added."""
    return tuple(_observers)
