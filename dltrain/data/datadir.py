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

from pydantic import Field, TypeAdapter, ValidationError

from dltrain.core.errors import DataError, UsageError, describe_validation_error
from dltrain.core.files import write_json_atomic
from dltrain.core.vocabulary import SPLITS
from dltrain.data.har.meta import HarMeta
from dltrain.data.meta import DATA_FORMAT_VERSION
from dltrain.data.retina.meta import RetinaMeta

META_FILE = "meta.json"
SOURCE_WORDS = {"hapt": "har", "demo": "retina"}  # the SOURCEs `prepare` knows by name, and their task
DataMeta = Annotated[HarMeta | RetinaMeta, Field(discriminator="task")]
META_SCHEMA: TypeAdapter = TypeAdapter(DataMeta)


def parse_meta(payload: Any, origin: str) -> HarMeta | RetinaMeta:
    """A meta.json's content as its typed model, or one DataError naming `origin` and the problem."""
    if not isinstance(payload, dict) or "task" not in payload:
        raise DataError(f"{origin} lacks 'task'; was it written by dltrain prepare?")
    version = payload.get("format_version")
    if version != DATA_FORMAT_VERSION:
        raise DataError(
            f"{origin}: format version {version!r}, but this dltrain reads version {DATA_FORMAT_VERSION}; run "
            "'dltrain prepare' again"
        )
    try:
        return META_SCHEMA.validate_python(payload)
    except ValidationError as error:
        location = [str(part) for part in error.errors()[0]["loc"][1:]]  # without the union's tag (the task)
        raise DataError(f"{origin}: {describe_validation_error(error, location)}") from None


def write_meta(folder: Path, meta: HarMeta | RetinaMeta) -> None:
    """The one writer of meta.json; written last, its presence marks a complete DATA_DIR."""
    write_json_atomic(Path(folder) / META_FILE, meta.model_dump(mode="json"))


@dataclass
class DataDir:
    path: Path
    meta: HarMeta | RetinaMeta
    _splits: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, path: Path) -> DataDir:
        path = Path(path)
        meta_path = path / META_FILE
        if str(path) in SOURCE_WORDS and not meta_path.is_file():  # `hapt`, `demo`: raw data, prepared first
            prepared = "retina-demo" if str(path) == "demo" else str(path)
            raise DataError(
                f"{path} is not a DATA_DIR: the SOURCE {path} is prepared first, dltrain prepare "
                f"{SOURCE_WORDS[str(path)]} {path} --out data/{prepared}"
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

    def split(self, name: str):
        """A split as its task stores it (arrays for activity windows, a table for photographs), read once."""
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; valid: {', '.join(SPLITS)}")
        if name not in self._splits:
            self._splits[name] = self.meta.read_split(self.path, name)
        return self._splits[name]
