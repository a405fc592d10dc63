"""What activity augmentation needs to know before any model exists, without importing Keras (a
config check runs before TensorFlow starts): which channels form sensor triads, and whether the
config asks for any augmentation of signals."""

from __future__ import annotations

import re

AXES = ("x", "y", "z")
SIGNAL_KEYS = ("signal_rotation", "signal_scaling", "signal_time_warp")  # the augment keys of activity signals
TRIAD_NAME = re.compile(
    r"^(?:(?P<suffixed>.+)[_\-. ](?P<axis_last>[xyz])|(?P<axis_first>[xyz])(?:[_\-. ](?P<prefixed>.+))?)$"
)


def sensor_triads(channels: list[str]) -> list[list[int]]:
    """The channel indices of every sensor measured along x, y and z, found by name (any case):
    `<sensor>_x` (or -, ., space before the axis), `x-<sensor>` (WISDM's `x-axis`), or a bare `x`, `y`, `z`."""
    stems: dict[str, dict[str, int]] = {}
    for index, name in enumerate(channels):
        match = TRIAD_NAME.match(name.strip().lower())
        if match:
            stem = match["suffixed"] if match["suffixed"] is not None else f"~{match['prefixed'] or ''}"
            stems.setdefault(stem, {})[match["axis_last"] or match["axis_first"]] = index
    return [[axes[axis] for axis in AXES] for axes in stems.values() if len(axes) == 3]


def is_enabled(settings) -> bool:
    """Whether the config's `augment` section asks for any of it (SIGNAL_KEYS)."""
    return any(getattr(settings, key) for key in SIGNAL_KEYS)
