"""Observers: other components (the CloudWatch publisher) that see every request and task run the metrics count."""

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


#: ``observer(task_name, outcome, duration_ms)``; must return at once and never raise.
TaskObserver = Callable[[str, str, float], None]

_task_observers: list[TaskObserver] = []


def add_task_observer(observer: TaskObserver) -> None:
    """Call ``observer`` for every task run counted in this process (idempotent)."""
    if observer not in _task_observers:
        _task_observers.append(observer)


def remove_task_observer(observer: TaskObserver) -> None:
    """Stop calling ``observer``; a no-op when it was not added."""
    if observer in _task_observers:
        _task_observers.remove(observer)
