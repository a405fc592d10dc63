"""Presets by name: the YAML files in `config/presets/`, and those a task registers from its own
folder (`tasks.registry.register_task`). Light: `dltrain --help` imports it."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from dltrain.core.registry import Registry

PRESETS: Registry = Registry("preset")  # name -> a YAML file; the built-in ones are listed from the folder


@cache  # the package's folder does not change while dltrain runs; listed once
def builtin_presets() -> dict[str, Path]:
    folder = resources.files("dltrain.config") / "presets"
    return {
        entry.name.removesuffix(".yaml"): Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".yaml")
    }


def preset_names() -> list[str]:
    return sorted({*builtin_presets(), *PRESETS.names()})


def preset_text(name: str) -> str | None:
    """The preset's YAML text, or None when no preset has that name."""
    path = builtin_presets().get(name) or (PRESETS.get(name) if name in PRESETS else None)
    return None if path is None else Path(path).read_text(encoding="utf-8")
