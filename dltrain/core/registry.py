"""Name -> builder registries; an unknown name is answered with the list of valid ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from dltrain.core.errors import UsageError

Builder = TypeVar("Builder", bound=Callable)


class Registry(Generic[Builder]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, Builder] = {}

    def register(self, name: str) -> Callable[[Builder], Builder]:
        def decorator(builder: Builder) -> Builder:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._builders[name] = builder
            return builder

        return decorator

    def names(self) -> list[str]:
        return sorted(self._builders)

    def unknown_message(self, name: str) -> str:
        return f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}"

    def check(self, name: str) -> str:
        """The name itself if registered; a ValueError (as config validators expect) if not."""
        if name not in self._builders:
            raise ValueError(self.unknown_message(name))
        return name

    def get(self, name: str) -> Builder:
        if name not in self._builders:
            raise UsageError(self.unknown_message(name))
        return self._builders[name]
