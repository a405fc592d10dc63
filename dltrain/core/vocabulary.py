"""Names every layer shares, stated once and light enough for the CLI to import at start-up: a
DATA_DIR's splits."""

from __future__ import annotations

from typing import Literal, get_args

SplitName = Literal["train", "val", "test", "unlabelled"]
SPLITS: tuple[SplitName, ...] = get_args(SplitName)
