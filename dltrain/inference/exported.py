"""Models written by `dltrain export`, loaded behind the one method scoring uses: `predict`.

`dltrain export` checks its file against the Keras model on the spot; `dltrain predict --model`
scores whole inputs with the exported file through this module, so the same parity can be seen on
a folder of photographs or a set of recordings. The run still supplies everything around the
model: classes, windowing, image options and grading thresholds.

Loading a SavedModel runs whatever graph its folder holds, so `predict --model` accepts only an
export that `dltrain export` wrote from that very run, unchanged since: export records the sha256
of what it wrote in the run's `exports.json`, and predict checks it before loading anything.
"""

from __future__ import annotations

import hashlib
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from dltrain.core.errors import DataError, UsageError, describe_validation_error
from dltrain.core.extras import require_extra
from dltrain.core.files import update_digest, write_json_atomic

FORMATS = ("saved_model", "litert", "onnx")
BATCH = 256  # samples per call for the formats that take any batch size


def format_of(path: Path) -> str:
    """The export format of `path`, from what `dltrain export` writes: a SavedModel folder, a .tflite or .onnx file."""
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "saved_model"
        raise DataError(f"{path}: a folder without saved_model.pb is not a SavedModel")
    if not path.is_file():
        raise DataError(f"{path}: no such file or folder")
    if path.suffix == ".tflite":
        return "litert"
    if path.suffix == ".onnx":
        return "onnx"
    raise DataError(f"{path}: not an exported model (a SavedModel folder, a .tflite or an .onnx file)")


EXPORTS_FILE = "exports.json"  # in the run folder: the sha256 of every export written from it


class ExportRecord(BaseModel):
    """One export `dltrain export` wrote from the run, keyed in exports.json by its sha256."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["saved_model", "litert", "onnx"]
    path: str
    created: str


EXPORT_RECORDS = TypeAdapter(dict[str, ExportRecord])


def export_digest(path: Path) -> str:
    """sha256 of an exported file, or of a folder's files with their relative paths."""
    digest = hashlib.sha256()
    files = (
        [path]
        if path.is_file()
        else sorted(entry for entry in path.rglob("*") if entry.is_file() or entry.is_symlink())
    )
    for entry in files:
        if entry.is_symlink():
            raise DataError(f"{path}: holds a symbolic link ({entry}); not an export dltrain wrote")
        digest.update(str(entry.relative_to(path) if path.is_dir() else entry.name).encode())
        update_digest(digest, entry)
    return digest.hexdigest()


def recorded_exports(run) -> dict[str, ExportRecord]:
    path = run.path / EXPORTS_FILE
    if not path.is_file():
        return {}
    try:
        return EXPORT_RECORDS.validate_json(path.read_bytes())
    except (ValidationError, OSError) as error:
        reason = describe_validation_error(error) if isinstance(error, ValidationError) else str(error)
        raise DataError(f"{path} is damaged ({reason}); remove it, then export the model again") from None


def record_export(run, path: Path, export_format: str) -> None:
    records = recorded_exports(run)
    records[export_digest(path)] = ExportRecord(
        format=export_format, path=str(path.resolve()), created=datetime.now(UTC).isoformat(timespec="seconds")
    )
    write_json_atomic(run.path / EXPORTS_FILE, EXPORT_RECORDS.dump_python(records))


def check_export_of(run, path: Path) -> str:
    """The export's format, once it is known to be one `dltrain export` wrote from `run`, unchanged."""
    export_format = format_of(path)
    if export_digest(path) not in recorded_exports(run):
        raise DataError(
            f"{path} is not an export of {run.path} as dltrain export wrote it (changed since, or exported from "
            "another "
            "run); loading a SavedModel runs its graph, so only the run's own exports are used"
        )
    return export_format


def require_onnx_runtime(also: tuple[str, ...] = ()) -> None:
    require_extra("onnx", (*also, "onnxruntime"), "ONNX")


class ExportedModel:
    """An exported model with Keras's `predict(inputs, batch_size=..., verbose=...)` shape of call.

    `inputs` is an array of samples or a tf.data pipeline of (inputs, target) batches, as the
    scoring code passes to a Keras model.
    """

    def __init__(self, path: Path):
        self.path = path
        self.format = format_of(path)
        try:
            self._load()
        except (UsageError, DataError):
            raise
        except Exception as error:  # each runtime raises its own types for a damaged file
            raise DataError(
                f"{path} cannot be loaded as {self.format} ({type(error).__name__}: "
                f"{str(error).splitlines()[0] if str(error) else ''})"
            ) from None

    def _load(self) -> None:
        if self.format == "saved_model":
            import tensorflow as tf

            self._served = tf.saved_model.load(str(self.path))
            if not hasattr(self._served, "serve"):
                raise DataError(f"{self.path}: this SavedModel has no 'serve' endpoint (write it with dltrain export)")
            (spec,) = self._served.serve.concrete_functions[0].structured_input_signature[0]
            self.input_shape = tuple(spec.shape)
        elif self.format == "litert":
            import tensorflow as tf

            from dltrain.core.console import backend_chatter_silenced

            with warnings.catch_warnings(), backend_chatter_silenced():
                warnings.simplefilter("ignore", UserWarning)  # a notice about TensorFlow's plans, not the user's input
                self._interpreter = tf.lite.Interpreter(model_path=str(self.path))
                self._interpreter.allocate_tensors()  # TFLite's "Created ... XNNPACK delegate" notice, from C++
            self._source, self._result = (
                self._interpreter.get_input_details()[0],
                self._interpreter.get_output_details()[0],
            )
            self.input_shape = (None, *self._source["shape"][1:])
        else:
            require_onnx_runtime()
            import onnxruntime

            self._session = onnxruntime.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
            source = self._session.get_inputs()[0]
            self._input_name = source.name
            self.input_shape = (None, *source.shape[1:])

    def check_fits(self, sample_shape: tuple[int, ...], what: str) -> None:
        """One line instead of a runtime's error deep inside when the export is for other data."""
        expected = tuple(int(size) for size in sample_shape)
        takes = tuple(int(size) for size in self.input_shape[1:])
        if takes != expected:
            raise DataError(
                f"{self.path} takes samples of shape {takes}, but {what} are of shape {expected}: it was exported "
                "from another run"
            )

    def _predict_array(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32)
        if self.format == "litert":  # a batch of one: the phone's way of calling it
            outputs = []
            for sample in samples:
                self._interpreter.set_tensor(self._source["index"], sample[None])
                self._interpreter.invoke()
                outputs.append(self._interpreter.get_tensor(self._result["index"])[0].copy())
            return np.stack(outputs)
        if self.format == "saved_model":
            import tensorflow as tf

            call = lambda part: np.asarray(self._served.serve(tf.constant(part)))  # noqa: E731
        else:
            call = lambda part: self._session.run(None, {self._input_name: part})[0]  # noqa: E731
        return np.concatenate([call(samples[start : start + BATCH]) for start in range(0, len(samples), BATCH)])

    def predict(self, inputs, batch_size: int | None = None, verbose: int = 0) -> np.ndarray:
        if isinstance(inputs, np.ndarray):
            return self._predict_array(inputs)
        # A tf.data pipeline of (inputs, target) batches: score batch by batch, never all at once.
        return np.concatenate(
            [self._predict_array(batch[0].numpy() if isinstance(batch, tuple) else batch.numpy()) for batch in inputs]
        )
