"""The one exception type the CLI turns into a clean, one-line exit.

Exit codes (documented in docs/errors.md): 2 for usage errors (bad option value, unknown config key,
wrong type), 1 for data errors (missing file, wrong layout, malformed values).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

USAGE_EXIT_CODE = 2
DATA_EXIT_CODE = 1


class DltrainError(Exception):
    """A problem the user can fix; the message is shown as is, without a traceback."""

    exit_code = DATA_EXIT_CODE


class DataError(DltrainError):
    """Missing path, wrong layout, malformed or inconsistent data."""

    exit_code = DATA_EXIT_CODE


class UsageError(DltrainError):
    """Bad option value, unknown config key, impossible combination of settings."""

    exit_code = USAGE_EXIT_CODE


class DivergedError(UsageError):
    """Training diverged before any epoch could be kept: nothing of the run is worth resuming."""


def describe_validation_error(error: ValidationError, location: list[str] | None = None) -> str:
    """The first problem pydantic found, as `key = value: message` on one line; `location` names
    the key when the error's own location needs mending (a discriminated union puts its tag there)."""
    first = error.errors()[0]
    key = ".".join(location if location is not None else [str(part) for part in first["loc"]])
    message = first["msg"].removeprefix("Value error, ")
    if not key or (first["type"] == "value_error" and isinstance(first.get("input"), dict)):
        return message  # a rule across keys (of a section): the message names them
    if first["type"] in ("missing", "extra_forbidden"):
        return f"{key}: {message}"
    shown = repr(first.get("input"))
    return f"{key} = {shown if len(shown) <= 60 else shown[:57] + '...'}: {message}"
