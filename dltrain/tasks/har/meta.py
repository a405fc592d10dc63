"""An activity DATA_DIR: `meta.json` fields of its own, and its splits as `<split>.npz` arrays."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

from dltrain.core.errors import DataError
from dltrain.core.vocabulary import SplitName
from dltrain.data.meta import MetaBase


@dataclass
class Split:
    x: np.ndarray  # (windows, readings, channels) float32
    y: np.ndarray  # (windows,) class index, -1 when unlabelled
    ids: np.ndarray  # (windows,) str
    subjects: np.ndarray  # (windows,) int, -1 when unknown


def write_split(folder: Path, name: str, split: Split) -> None:
    """`<name>.npz`: plain arrays (no pickled objects), read back with allow_pickle=False."""
    np.savez(
        Path(folder) / f"{name}.npz",
        x=split.x.astype(np.float32),
        y=split.y,
        ids=split.ids.astype(str),
        subjects=split.subjects,
    )


class Normalization(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mean: list[float]
    std: list[float]

    @model_validator(mode="after")
    def _finite(self):
        if not all(math.isfinite(value) for value in self.mean + self.std) or any(value <= 0 for value in self.std):
            raise ValueError("normalization: mean and std must be finite numbers, std above 0")
        return self


class HarMeta(MetaBase):
    task: Literal["har"] = "har"
    channels: list[str] = Field(min_length=1)
    window: PositiveInt
    step: PositiveInt | None = None
    sample_rate_hz: PositiveFloat | None = None
    normalization: Normalization
    split_subjects: dict[SplitName, list[int]] = Field(default_factory=dict)

    compatibility_fields: ClassVar[tuple[str, ...]] = ("task", "classes", "channels", "input_shape")

    @model_validator(mode="after")
    def _shapes_agree(self):
        if self.input_shape != [self.window, len(self.channels)]:
            raise ValueError(
                f"input_shape {self.input_shape} is not [window {self.window}, {len(self.channels)} channels]"
            )
        if not len(self.normalization.mean) == len(self.normalization.std) == len(self.channels):
            raise ValueError(
                f"normalization has {len(self.normalization.mean)} means for {len(self.channels)} channels"
            )
        return self

    def read_split(self, folder: Path, name: str) -> Split:
        """`<name>.npz`, checked against this meta: shapes, label range, one id and subject per window."""
        path = Path(folder) / f"{name}.npz"
        if not path.is_file():
            raise DataError(f"{folder} has no {name} split ({path.name} missing)")
        try:
            with np.load(path, allow_pickle=False) as arrays:
                split = Split(arrays["x"], arrays["y"], arrays["ids"], arrays["subjects"])
        except (OSError, ValueError, KeyError, EOFError) as error:
            raise DataError(
                f"{path} is unreadable or incomplete "
                f"({str(error).splitlines()[0] if str(error) else type(error).__name__})"
            ) from None
        self._check(split, path, labelled=name != "unlabelled")
        return split

    def pool_splits(self, parts: list[Split]) -> Split:
        fields = ("x", "y", "ids", "subjects")
        return Split(*(np.concatenate([getattr(part, name) for part in parts]) for name in fields))

    def _check(self, split: Split, path: Path, labelled: bool) -> None:
        count = len(split.x)
        if (
            split.x.ndim != 3
            or list(split.x.shape[1:]) != self.input_shape
            or not np.issubdtype(split.x.dtype, np.floating)
        ):
            raise DataError(
                f"{path}: x has shape {list(split.x.shape)}, but meta.json says windows of {self.input_shape}"
            )
        if any(len(array) != count or array.ndim != 1 for array in (split.y, split.ids, split.subjects)):
            raise DataError(f"{path}: y, ids and subjects must hold one value per window ({count})")
        if not np.issubdtype(split.y.dtype, np.integer) or not np.issubdtype(split.subjects.dtype, np.integer):
            raise DataError(f"{path}: y and subjects must be integers")
        low = 0 if labelled else -1
        if count and (split.y.min() < low or split.y.max() >= len(self.classes)):
            raise DataError(
                f"{path}: labels must lie in {low}..{len(self.classes) - 1} ({len(self.classes)} classes), found "
                f"{split.y.min()}..{split.y.max()}"
            )
        if count and self.split_size(path.stem) and count != self.split_size(path.stem):
            raise DataError(f"{path}: {count} windows, but meta.json says {self.split_size(path.stem)}")
