"""Names every layer shares, stated once and light enough for the CLI to import at start-up: a
DATA_DIR's splits and the test-time augmentation modes with their views."""

from __future__ import annotations

from typing import Literal, get_args

SplitName = Literal["train", "val", "test", "unlabelled"]
SPLITS: tuple[SplitName, ...] = get_args(SplitName)

# Test-time augmentation modes and their views (indices into an image's eight rotations and mirrors,
# as RetinaTask._view_outputs computes them): the four flips (identity, up-down, left-right, both =
# 180 degrees), or all eight.
TTA_VIEWS = {"none": (0,), "flips": (0, 2, 4, 6), "dihedral": (0, 1, 2, 3, 4, 5, 6, 7)}
