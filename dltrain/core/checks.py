"""Checks of numeric option values shared by the commands, each failing as one UsageError line.
NaN and infinities fail every check: a comparison with NaN is always false, so a check written as
`if value > limit: refuse` would let NaN through."""

from __future__ import annotations

import math

from dltrain.core.errors import UsageError


def check_fraction(option: str, value: float) -> float:
    """A share held out, in [0, 1)."""
    if not (math.isfinite(value) and 0 <= value < 1):
        raise UsageError(f"{option} {value}: must lie in [0, 1)")
    return value


def check_positive(option: str, value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"{option} {value}: must be a positive number")
    return value
