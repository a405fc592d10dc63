"""What every prepared DATA_DIR's `meta.json` holds, whatever the task: the shared part of the schema.

Each task extends `MetaBase` with its own fields (`tasks/har/meta.py`, `tasks/retina/meta.py`) and
registers the class in `data.registries.META_TYPES` under its task's name; `data/datadir.py` reads and writes
meta.json through that registry, in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveInt, model_validator

from dltrain.core.errors import DataError, UsageError
from dltrain.core.vocabulary import SplitName

DATA_FORMAT_VERSION = 1
LABELLED_SPLITS: tuple[SplitName, ...] = ("train", "val", "test")
# In a derived DATA_DIR's `source`: its test split holds validation subjects held out of validation
# (Task.training_subset with hold_out), windows that choose nothing, never the original's test subjects.
HELD_OUT_SOURCE_KEY = "held_out_validation_subjects"


class MetaBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: Literal[1] = DATA_FORMAT_VERSION
    task: str
    classes: list[str] = Field(min_length=2)
    input_shape: list[PositiveInt] = Field(min_length=1)
    splits: dict[SplitName, NonNegativeInt]
    class_counts: dict[SplitName, dict[str, NonNegativeInt]] = Field(default_factory=dict)
    source: dict[str, Any] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    rejects: NonNegativeInt = 0
    created: str = ""
    dltrain_version: str = ""

    @model_validator(mode="after")
    def _classes_are_distinct(self):
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("classes: a class is named twice")
        return self

    # The fields another DATA_DIR must share with this one for a model trained here to score it.
    compatibility_fields: ClassVar[tuple[str, ...]] = ("task", "classes", "input_shape")

    def read_split(self, folder: Path, name: str) -> Any:
        """The split `name` of the DATA_DIR at `folder`, as the task's training and scoring read it."""
        raise NotImplementedError(f"{type(self).__name__} does not say how its splits are read (read_split)")

    def pool_splits(self, parts: list[Any]) -> Any:
        """Several splits as one, in order (train and val, for a final model that trains on both)."""
        raise UsageError(
            f"{self.task} data cannot train on several splits at once (train.fit_on, dltrain refit): "
            f"{type(self).__name__} does not say how its splits are pooled (pool_splits)"
        )

    def split_size(self, name: str) -> int:
        return int(self.splits.get(name, 0))

    def check_compatible(self, other: MetaBase, other_origin: str) -> None:
        """Refuse, naming the first difference, a DATA_DIR whose data this one's model cannot score."""
        for name in self.compatibility_fields:
            ours, theirs = getattr(self, name, None), getattr(other, name, None)
            if ours != theirs:
                raise DataError(
                    f"{other_origin} does not match the run's data: {name} {_plain(theirs)} vs {_plain(ours)}"
                )


def _plain(value):
    return value.model_dump() if isinstance(value, BaseModel) else value
