"""A prepared DATA_DIR: `meta.json` (read once, validated against the task's schema) and its splits.

`meta.json` carries everything `train`, `evaluate` and `predict` need (task, classes, shapes,
normalisation statistics, image options, split sizes, source, options), so no task flag is ever
needed. It is written last by `prepare`: a folder without it is not (yet) a DATA_DIR.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SerializeAsAny, ValidationError

from dltrain.core.errors import DataError, UsageError, describe_validation_error
from dltrain.core.files import write_json_atomic
from dltrain.core.vocabulary import SPLITS
from dltrain.data.meta import DATA_FORMAT_VERSION, MetaBase
from dltrain.data.registries import META_TYPES, SOURCE_WORDS

META_FILE = "meta.json"


def parse_meta(payload: Any, origin: str) -> MetaBase:
    """A meta.json's content as its task's typed model, or one DataError naming `origin` and the problem."""
    if isinstance(payload, MetaBase):
        return payload
    if not isinstance(payload, dict) or not isinstance(payload.get("task"), str):
        raise DataError(f"{origin} lacks 'task'; was it written by dltrain prepare?")
    if payload["task"] not in META_TYPES:
        unfilled = " (no task is registered: import dltrain.tasks first)" if not META_TYPES.names() else ""
        raise DataError(f"{origin}: {META_TYPES.unknown_message(payload['task'])}{unfilled}")
    version = payload.get("format_version")
    if version != DATA_FORMAT_VERSION:
        raise DataError(
            f"{origin}: format version {version!r}, but this dltrain reads version {DATA_FORMAT_VERSION}; run "
            "'dltrain prepare' again"
        )
    try:
        return META_TYPES.get(payload["task"]).model_validate(payload)
    except ValidationError as error:
        raise DataError(f"{origin}: {describe_validation_error(error)}") from None


def _embedded_meta(payload: Any) -> MetaBase:
    try:
        return parse_meta(payload, "the DATA_DIR's meta")
    except DataError as error:
        raise ValueError(str(error)) from None  # pydantic reports it where the meta sits (provenance.json)


# A DATA_DIR's meta inside another schema (provenance.json): validated as its task's type, written whole.
DataMeta = Annotated[SerializeAsAny[MetaBase], BeforeValidator(_embedded_meta)]


def write_meta(folder: Path, meta: MetaBase) -> None:
    """The one writer of meta.json; written last, its presence marks a complete DATA_DIR."""
    write_json_atomic(Path(folder) / META_FILE, meta.model_dump(mode="json"))


@dataclass
class DataDir:
    path: Path
    meta: MetaBase
    _splits: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: Path) -> DataDir:
        path = Path(path)
        meta_path = path / META_FILE
        if str(path) in SOURCE_WORDS and not meta_path.is_file():  # `hapt`, `demo`: raw data, prepared first
            word = SOURCE_WORDS.get(str(path))
            raise DataError(
                f"{path} is not a DATA_DIR: the SOURCE {path} is prepared first, dltrain prepare "
                f"{word.task} {path} --out {word.data_dir}"
            )
        if not path.exists():
            raise DataError(f"{path}: no such folder (make one with 'dltrain prepare')")
        if not path.is_dir() or not meta_path.is_file():
            raise DataError(f"{path} is not a prepared DATA_DIR (no {META_FILE}); make one with 'dltrain prepare'")
        try:
            payload = json.loads(meta_path.read_bytes())
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as error:
            raise DataError(f"{meta_path} is not valid JSON ({str(error).splitlines()[0]})") from None
        return cls(path, parse_meta(payload, str(meta_path)))

    @property
    def task(self) -> str:
        return self.meta.task

    def has_split(self, name: str) -> bool:
        return self.meta.split_size(name) > 0

    def available_splits(self) -> list[str]:
        return [name for name in SPLITS if self.has_split(name)]

    def prediction_split(self, requested: str | None) -> str:
        """The split to predict: as asked, else `unlabelled` if present, else `test`."""
        available = self.available_splits()
        if requested is None:
            chosen = "unlabelled" if "unlabelled" in available else "test" if "test" in available else None
            if chosen is None:
                raise UsageError(
                    f"{self.path} has no test or unlabelled split; choose one with --split ({', '.join(available)})"
                )
            return chosen
        if requested not in available:
            raise DataError(f"{self.path} has no {requested} split (splits: {', '.join(available)})")
        return requested

    def for_training(self, fit_on: str) -> DataDir:
        """This DATA_DIR as a training with `train.fit_on` sees it: with `train+val`, its train split is
        both pooled (and meta.json's train counts theirs); validation still reads val, which is then
        in-sample. The folder and its meta.json are untouched."""
        names = fit_on.split("+")
        if names == ["train"]:
            return self
        counts = [self.meta.class_counts.get(name) for name in names]
        update = {"splits": {**self.meta.splits, "train": sum(self.meta.split_size(name) for name in names)}}
        if all(counts):
            pooled_counts = {label: sum(count.get(label, 0) for count in counts) for label in self.meta.classes}
            update["class_counts"] = {**self.meta.class_counts, "train": pooled_counts}
        meta = self.meta.model_copy(update=update)
        pooled = self.meta.pool_splits([self.split(name) for name in names])
        return DataDir(self.path, meta, {**self._splits, "train": pooled})

    def split(self, name: str):
        """A split as its task stores it (arrays for activity windows, a table for photographs), read once."""
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; valid: {', '.join(SPLITS)}")
        if name not in self._splits:
            self._splits[name] = self.meta.read_split(self.path, name)
        return self._splits[name]
