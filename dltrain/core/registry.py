"""Name -> builder registries; an unknown name is answered with the list of valid ones.

A name can be registered lazily, as "module:attribute": the module is imported on the first `get`,
so a registry lists names (for `--help`, for error lines) without importing what they build.
Tasks register this way, and so do task plugins found through the `dltrain.tasks` entry points.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

from dltrain.core.errors import UsageError

Builder = TypeVar("Builder", bound=Callable)


class Registry(Generic[Builder]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._builders: dict[str, Builder] = {}
        self._targets: dict[str, str] = {}  # name -> "module:attribute", imported on first use

    def register(self, name: str) -> Callable[[Builder], Builder]:
        def decorator(builder: Builder) -> Builder:
            self._claim(name)
            self._builders[name] = builder
            return builder

        return decorator

    def register_lazy(self, name: str, target: str) -> None:
        """`target` is "package.module:attribute", imported when `name` is first asked for."""
        module, _, attribute = target.partition(":")
        if not module or not attribute or ":" in attribute:
            raise ValueError(f"{self.kind} {name!r}: {target!r} is not 'module:attribute'")
        self._claim(name)
        self._targets[name] = target

    def _claim(self, name: str) -> None:
        if name in self._builders or name in self._targets:
            raise ValueError(f"{self.kind} {name!r} is registered twice")

    def names(self) -> list[str]:
        return sorted({*self._builders, *self._targets})

    def __contains__(self, name: object) -> bool:
        return name in self._builders or name in self._targets

    def unknown_message(self, name: str) -> str:
        return f"unknown {self.kind} {name!r}; valid: {', '.join(self.names()) or 'none registered'}"

    def check(self, name: str) -> str:
        """The name itself if registered; a ValueError (as config validators expect) if not."""
        if name not in self:
            raise ValueError(self.unknown_message(name))
        return name

    def get(self, name: str) -> Builder:
        if name not in self:
            raise UsageError(self.unknown_message(name))
        if name not in self._builders:
            self._builders[name] = self._load(name)
            del self._targets[name]
        return self._builders[name]

    def _load(self, name: str) -> Builder:
        """The registered target imported; a target that cannot be (a plugin's missing dependency) stays
        registered and is refused in one line, naming it."""
        target = self._targets[name]
        module, attribute = target.split(":")
        try:
            return getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as error:
            raise UsageError(f"{self.kind} {name!r} could not be loaded ({target}): {error}") from None
