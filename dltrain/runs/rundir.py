"""The run directory: everything that explains and reproduces one training run, and its one reader.

    config.yaml        resolved configuration, written before training starts
    provenance.json    status, versions, git commit, seed, device, precision, XLA, and the DATA_DIR
                       with its meta.json (classes, channels, normalisation) that predict relies on
    model.keras        best model by validation (Keras format, loaded with safe_mode=True)
    last.keras         the latest epoch with optimizer state and what --resume needs
    history.csv        one row per epoch (losses, metrics, learning rate)
    metrics-<split>.json, confusion-matrix-<split>.png, learning-curves.png
    tensorboard/       TensorBoard logs, with train.tensorboard: true

`Run.open` is the only code that reads a run folder; `Run.save_provenance` the only code that
writes provenance.json, whose schema `Provenance` is validated on every read.
"""

from __future__ import annotations

import fnmatch
import json
import math
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dltrain.config.loading import validate_config
from dltrain.config.schema import Config
from dltrain.core.errors import DataError, describe_validation_error
from dltrain.core.files import write_json_atomic, write_text_atomic
from dltrain.data.datadir import DataMeta

CONFIG_FILE = "config.yaml"
PROVENANCE_FILE = "provenance.json"
MODEL_FILE = "model.keras"
LAST_MODEL_FILE = "last.keras"
TENSORBOARD_FOLDER = "tensorboard"
HISTORY_FILE = "history.csv"
STATUS_COMPLETE = "complete"
# A run's own files: no other output may take their place. Other files (predictions, exports) may
# be written into a run folder beside them.
RUN_FILE_PATTERNS = (
    CONFIG_FILE,
    PROVENANCE_FILE,
    MODEL_FILE,
    LAST_MODEL_FILE,
    HISTORY_FILE,
    TENSORBOARD_FOLDER,
    "metrics-*.json",
    "*.png",
    "blend.json",
    "*.partial-*",
)
PROVENANCE_FORMAT_VERSION = 1
Status = Literal["running", "interrupted", "complete"]


class DataRecord(BaseModel):
    """The DATA_DIR a run was trained on, with a copy of its meta.json."""

    model_config = ConfigDict(extra="forbid")

    path: str
    meta: DataMeta


class Provenance(BaseModel):
    """provenance.json: what ran, where, on which data, and what it scored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    format_version: Literal[1] = PROVENANCE_FORMAT_VERSION
    status: Status = "running"
    command: str = ""
    config_source: str | None = None
    seed: int = 0
    versions: dict[str, str] = Field(default_factory=dict)
    git_commit: str | None = None
    device: dict[str, Any] = Field(default_factory=dict)
    backend: str = "tensorflow"
    strategy: str = "default"
    replicas: int = 1
    mixed_precision: bool = False
    memory_growth: bool = False
    precision: str = "float32"
    xla: bool = False
    augmentation: Literal["pipeline", "model"] | None = None  # where augmentation ran (or would have)
    global_batch: int | None = None  # samples per optimizer step, over every replica and process
    deterministic_ops: bool = False
    cudnn_gru: bool = False
    parameters: int = 0
    data: DataRecord | None = None
    input: dict[str, Any] | None = None  # what the input pipeline chose: the image cache, where augmentation runs
    processes: dict[str, Any] | None = None
    tracking: dict[str, str] | None = None
    resumed_after_epochs: list[int] = Field(default_factory=list)
    diverged_at: dict[str, Any] | None = None
    thresholds: dict[str, list[float]] | None = None  # a regression head's cut points, per TTA mode
    epochs_run: int | None = None
    best_epoch: int | None = None
    train_seconds: float | None = None
    metrics: dict[str, dict[str, float]] = Field(default_factory=dict)
    weights_sha256: str | None = None

    @field_validator("thresholds", mode="before")
    @classmethod
    def _one_set_per_mode(cls, thresholds):
        # Runs written before the TTA modes kept one set: the thresholds of predictions without TTA.
        return {"none": thresholds} if isinstance(thresholds, list) else thresholds

    @field_validator("thresholds")
    @classmethod
    def _increasing_finite(cls, thresholds):
        for values in (thresholds or {}).values():
            increasing = all(low < high for low, high in zip(values, values[1:]))
            if len(values) != 4 or not all(math.isfinite(value) for value in values) or not increasing:
                raise ValueError("thresholds must be 4 increasing finite numbers")
        return thresholds


def git_commit() -> str | None:
    """The commit of the dltrain source tree, if it is a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def software_versions() -> dict:
    import keras
    import numpy
    import tensorflow

    from dltrain import __version__

    return {
        "dltrain": __version__,
        "python": platform.python_version(),
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }


def _read_provenance(path: Path) -> Provenance:
    try:
        payload = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as error:
        raise DataError(f"{path} is not valid JSON ({str(error).splitlines()[0]})") from None
    if not isinstance(payload, dict):
        raise DataError(f"{path}: not a JSON object")
    version = payload.get(
        "format_version", PROVENANCE_FORMAT_VERSION
    )  # runs written before the field existed are version 1
    if version != PROVENANCE_FORMAT_VERSION:
        raise DataError(
            f"{path}: format version {version!r}, but this dltrain reads version {PROVENANCE_FORMAT_VERSION}; train "
            "the run again"
        )
    try:
        return Provenance.model_validate(payload)
    except ValidationError as error:
        raise DataError(f"{path}: {describe_validation_error(error)}") from None


def _read_config(path: Path) -> Config:
    try:
        tree = yaml.safe_load(path.read_bytes())
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as error:
        raise DataError(f"{path} is not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(tree, dict):
        raise DataError(f"{path}: not a mapping of sections")
    try:
        return validate_config(tree, str(path), saved_run=True)
    except Exception as error:  # a UsageError from validation: the file, not the user's command, is at fault
        raise DataError(str(error)) from None


def is_run_folder(path: Path) -> bool:
    """Whether `path` looks like a run folder (dltrain's config.yaml or provenance.json in it); `Run.open` says
    whether it is a readable one."""
    return (Path(path) / CONFIG_FILE).is_file() or (Path(path) / PROVENANCE_FILE).is_file()


@dataclass
class Run:
    path: Path
    config: Config
    provenance: Provenance

    @classmethod
    def create(cls, path: Path, config: Config, provenance: Provenance) -> Run:
        """A new run in the (existing, empty) folder `path`: config.yaml is written before anything trains."""
        run = cls(Path(path), config, provenance)
        write_text_atomic(run.path / CONFIG_FILE, config.to_yaml())
        return run

    @classmethod
    def open(cls, path: Path, finished: bool = True) -> Run:
        """A run folder's config and provenance, validated; with `finished`, only a complete run
        with its model and data description (what evaluate, predict and export need)."""
        path = Path(path)
        if not path.is_dir():
            raise DataError(f"{path}: no such run folder")
        missing = [name for name in (CONFIG_FILE, PROVENANCE_FILE) if not (path / name).is_file()]
        if missing:
            raise DataError(f"{path} is not a dltrain run (missing {', '.join(missing)})")
        run = cls(path, _read_config(path / CONFIG_FILE), _read_provenance(path / PROVENANCE_FILE))
        if finished:
            run.check_finished()
        return run

    def check_finished(self) -> None:
        status = self.provenance.status
        if status == "interrupted" and (self.path / LAST_MODEL_FILE).is_file():
            raise DataError(
                f"{self.path}: training was interrupted; continue it with 'dltrain train --resume {self.path}'"
            )
        if status == "running" and (self.path / LAST_MODEL_FILE).is_file():
            raise DataError(
                f"{self.path}: training has not finished (status 'running'); unless it is training now, continue it "
                f"with 'dltrain train --resume {self.path}'"
            )
        if status != STATUS_COMPLETE or self.provenance.data is None:
            raise DataError(f"{self.path}: training did not finish (status {status!r}); train again")
        if not self.model_path.is_file():
            raise DataError(f"{self.path}: no {MODEL_FILE}")

    def save_provenance(self) -> None:
        write_json_atomic(self.path / PROVENANCE_FILE, self.provenance.model_dump(mode="json", exclude_none=True))

    @property
    def data_meta(self) -> DataMeta:
        return self.provenance.data.meta

    @property
    def data_dir(self) -> Path:
        return Path(self.provenance.data.path)

    def owns(self, path: Path) -> bool:
        """Whether `path` is (or lies inside) one of this run's own files."""
        relative = Path(path).resolve().relative_to(self.path.resolve())
        return (
            any(fnmatch.fnmatch(relative.parts[0], pattern) for pattern in RUN_FILE_PATTERNS)
            if relative.parts
            else True
        )

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_FILE

    def history(self) -> pd.DataFrame:
        """history.csv, every column numeric (an empty frame before the first epoch ends)."""
        path = self.path / HISTORY_FILE
        if not path.is_file():
            return pd.DataFrame()
        try:
            history = pd.read_csv(path)
        except pd.errors.EmptyDataError:
            return pd.DataFrame()
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
            raise DataError(f"{path}: not a readable CSV ({str(error).splitlines()[0]})") from None
        text = [column for column in history.columns if not pd.api.types.is_numeric_dtype(history[column])]
        if text:
            raise DataError(f"{path}: column {text[0]!r} holds text; history.csv has numbers only")
        return history

    def load_model(self):
        from dltrain.core.console import import_tensorflow_quietly

        import_tensorflow_quietly()
        import keras

        from dltrain.networks import register_custom_layers

        register_custom_layers()

        try:
            # compile=False: scoring needs no optimizer, and skipping it avoids rebuilding one.
            model = keras.saving.load_model(self.model_path, safe_mode=True, compile=False)
        except Exception as error:  # Keras raises many types for a damaged archive
            raise DataError(
                f"{self.model_path} cannot be loaded ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''})"
            ) from None
        self.check_fits(model, self.model_path)
        return model

    def check_fits(self, model, path: Path) -> None:
        """A model file copied in from another run would fail deep inside Keras; say so here."""
        expected_inputs = tuple(self.data_meta.input_shape)
        expected_outputs = 1 if self.config.model.head == "regression" else len(self.data_meta.classes)
        inputs, outputs = tuple(model.input_shape[1:]), model.output_shape[-1]
        if inputs != expected_inputs or outputs != expected_outputs:
            raise DataError(
                f"{path} takes inputs {list(inputs)} and gives {outputs} output(s), but this run's data has inputs "
                f"{list(expected_inputs)} and needs {expected_outputs}: the file belongs to another run"
            )
