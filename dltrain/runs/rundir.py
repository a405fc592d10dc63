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
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml
from pydantic import ValidationError

from dltrain.config.loading import validate_config
from dltrain.config.schema import Config
from dltrain.core.errors import DataError, describe_validation_error
from dltrain.core.files import write_json_atomic, write_text_atomic
from dltrain.data.datadir import DataMeta
from dltrain.runs.provenance import PROVENANCE_FORMAT_VERSION, Provenance

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


def read_config_file(path: Path) -> Config:
    """A run's config.yaml, validated as a saved run's (a DataError names what is wrong)."""
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
        run = cls(path, read_config_file(path / CONFIG_FILE), _read_provenance(path / PROVENANCE_FILE))
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

    def check_trained_on(self, meta: DataMeta, path: Path, action: str) -> None:
        """Refuse (DataError) a DATA_DIR other than the one this run trained on, before `action` uses it."""
        if meta != self.data_meta:
            raise DataError(
                f"{path} is not the data {self.path} was trained on (its meta.json differs); {action} with the "
                "original DATA_DIR"
            )

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
