"""One method of a client library wrapped so that it behaves exactly like the library's own.

The wrapper takes whatever arguments the wrapped method takes (it passes ``*args, **kwargs`` through
untouched, and finds the few it reads by name or position from the method's signature), returns what it
returns and raises what it raises. Patchers stack: another library may wrap the method before or after this
one, and :meth:`Patch.uninstall` never unwraps anything but its own wrapper. When another wrapper sits on
top, ours stays in its chain as a pass-through (removing it would break the other's reference to it), and
:meth:`Patch.install` switches it back on instead of wrapping twice.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

#: How far :meth:`Patch.install` follows ``__wrapped__`` looking for its own wrapper under others.
MAX_CHAIN = 32

#: ``around(original, args, kwargs, arguments)``: call ``original`` (once) and return what it returns.
Around = Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any], "Arguments"], Any]


class Arguments:
    """Where a function's named parameters are, positionally: to read and replace them in any call."""

    def __init__(self, function: Callable[..., Any]) -> None:
        try:
            parameters = list(inspect.signature(function).parameters.values())
        except (TypeError, ValueError):
            parameters = []
        self._positions = {
            parameter.name: index
            for index, parameter in enumerate(parameters)
            if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
        }

    def get(self, args: tuple[Any, ...], kwargs: dict[str, Any], name: str, default: Any = None) -> Any:
        """The value passed for ``name`` in this call, or ``default``."""
        position = self._positions.get(name)
        if position is not None and position < len(args):
            return args[position]
        return kwargs.get(name, default)

    def replace(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], name: str, value: Any
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call's arguments with ``name`` set to ``value`` where the caller passed it (else as a keyword)."""
        position = self._positions.get(name)
        if position is not None and position < len(args):
            return (*args[:position], value, *args[position + 1 :]), kwargs
        return args, {**kwargs, name: value}


class Patch:
    """``owner.attribute`` wrapped by ``around`` while installed; see the module's description."""

    def __init__(self, owner: type, attribute: str, around: Around, is_async: bool = False) -> None:
        self.owner = owner
        self.attribute = attribute
        self.around = around
        self.is_async = is_async
        self.active = False
        self.wrapper: Callable[..., Any] | None = None
        self.original: Callable[..., Any] | None = None

    def _reachable(self) -> bool:
        function: Any = self.owner.__dict__.get(self.attribute)
        for _ in range(MAX_CHAIN):
            if function is None:
                return False
            if function is self.wrapper:
                return True
            function = getattr(function, "__wrapped__", None)
        return False

    def install(self) -> None:
        """Wrap the method, or switch our wrapper back on if it is still in the chain; idempotent.

        Wraps again if another patcher's removal took ours out of the chain with its own.
        """
        if self.wrapper is not None and self._reachable():
            self.active = True
            return
        original = self.owner.__dict__.get(self.attribute) or getattr(self.owner, self.attribute)
        arguments = Arguments(original)
        around = self.around
        patch = self

        if self.is_async:

            @functools.wraps(original)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                if not patch.active:
                    return await original(*args, **kwargs)
                return await around(original, args, kwargs, arguments)

        else:

            @functools.wraps(original)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                if not patch.active:
                    return original(*args, **kwargs)
                return around(original, args, kwargs, arguments)

        self.original, self.wrapper = original, wrapper
        setattr(self.owner, self.attribute, wrapper)
        self.active = True

    def uninstall(self) -> None:
        """Unwrap the method if our wrapper is on top; else leave it in the chain as a pass-through."""
        if not self.active:
            return
        self.active = False
        if self.owner.__dict__.get(self.attribute) is self.wrapper:
            setattr(self.owner, self.attribute, self.original)
            self.wrapper = self.original = None
