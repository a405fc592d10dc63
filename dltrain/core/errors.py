"""The one exception type the CLI turns into a clean, one-line exit.

Exit codes (documented in docs/errors.md): 2 for usage errors (bad option value, unknown config key,
wrong type), 1 for data errors (missing file, wrong layout, malformed values).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
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


class DeviceMemoryError(DataError):
    """The device ran out of memory: the settings ask for more than this machine has."""


def device_memory_error(error: BaseException) -> DeviceMemoryError | None:
    """A backend's out-of-memory error (TensorFlow's ResourceExhaustedError, XLA's RESOURCE_EXHAUSTED on
    JAX) as one line saying what to lower; None for any other error (matched by name: nothing imported)."""
    name, text = type(error).__name__, str(error)
    if name != "ResourceExhaustedError" and not (name.endswith("RuntimeError") and "RESOURCE_EXHAUSTED" in text):
        return None
    first = text.strip().splitlines()[0][:200] if text.strip() else name
    return DeviceMemoryError(
        f"out of memory on the device ({first}); lower train.batch_size, the image --size or the model's size"
    )


DAMAGED_IMAGE_MARKER = "damaged prepared image:"  # what the input pipeline's check says, before the file's path
DECODING_SIGNS = ("DecodeJpeg", "Invalid JPEG data", "jpeg::Uncompress", "Not a JPEG file")


def decoding_error_line(error: BaseException) -> str | None:
    """A failure of the image decoding ops as one line, naming the file where the pipeline's check
    caught it (a prepared JPEG cut short); None for any other error, even one that mentions images."""
    if type(error).__name__ not in ("InvalidArgumentError", "DataLossError"):
        return None
    text = str(error)
    found = re.search(re.escape(DAMAGED_IMAGE_MARKER) + r"\] \[(.+?)\]", text)
    if found:
        return f"{found.group(1)}: a prepared image that cannot be decoded (cut short); run 'dltrain prepare' again"
    if any(sign in text for sign in DECODING_SIGNS):
        first = text.strip().splitlines()[0][:200]
        return f"a prepared image could not be decoded ({first}); run 'dltrain prepare' again"
    return None


def backend_failure(error: BaseException) -> DataError | None:
    """A backend error that is the machine's or the data's, not dltrain's: the device out of memory,
    or a prepared image that cannot be decoded (named where the pipeline's check caught it); None for
    any other error."""
    decoding = decoding_error_line(error)
    return device_memory_error(error) or (DataError(decoding) if decoding else None)


@contextmanager
def failures_explained() -> Iterator[None]:
    """Backend errors for what they are (`backend_failure`): a DataError in one line, so that a sweep
    records it as that point's failure and goes on; any other error as it was."""
    try:
        yield
    except Exception as error:
        explained = backend_failure(error)
        if explained is None:
            raise
        raise explained from None


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
