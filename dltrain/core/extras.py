"""The optional extras (pyproject.toml): one check, one message naming the extra to install."""

from __future__ import annotations

import importlib.util

from dltrain.core.errors import UsageError


def require_extra(extra: str, modules: tuple[str, ...], needed_by: str) -> None:
    """Refuse in one line when a module of `extra` is missing (a None entry in sys.modules counts as missing)."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(
            f"{needed_by} needs the optional extra: pip install 'dltrain[{extra}]' ({', '.join(missing)} not installed)"
        )
