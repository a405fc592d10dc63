"""`dltrain predict`: a finished run + any activity SOURCE or prepared DATA_DIR -> `id,activity` CSV."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from dltrain.data.datadir import META_FILE, SPLITS, read_meta, read_split, write_text_atomic
from dltrain.core.errors import DataError, UsageError
from dltrain.inference.evaluate import check_compatible
from dltrain.training.feeds import SCORING_BATCH_SIZE
from dltrain.data.har.readers import read_har_source
from dltrain.data.har.types import HarOptions
from dltrain.runs.rundir import open_run

logger = logging.getLogger("dltrain")


def prediction_split(data_dir: Path, run_meta: dict, split_name: str | None) -> str:
    """The split of a prepared DATA_DIR to predict: as asked, else `unlabelled` if present, else `test`."""
    data_meta = read_meta(data_dir)
    check_compatible(run_meta, data_meta, data_dir)
    available = [name for name in SPLITS if data_meta.get("splits", {}).get(name)]
    if split_name is None:
        split_name = "unlabelled" if "unlabelled" in available else "test" if "test" in available else None
        if split_name is None:
            raise UsageError(f"{data_dir} has no test or unlabelled split; choose one with --split ({', '.join(available)})")
    elif split_name not in available:
        raise DataError(f"{data_dir} has no {split_name} split (splits: {', '.join(available)})")
    return split_name


def windows_from_data_dir(data_dir: Path, run_meta: dict, split_name: str | None) -> tuple[np.ndarray, np.ndarray]:
    split = read_split(data_dir, prediction_split(data_dir, run_meta, split_name))
    return split.x, split.ids


def windows_from_source(source: str, run_meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """Read SOURCE exactly as the training data was cut: same window, step, channels and columns."""
    trained = run_meta.get("options", {})
    options = HarOptions(
        window=run_meta["window"] if run_meta.get("step") else None,
        step=run_meta.get("step"),
        channels=",".join(run_meta["channels"]),
        transitions=trained.get("transitions", False),
        label_column=trained.get("label_column"),
        time_column=trained.get("time_column"),
        subject_column=trained.get("subject_column"),
    )
    # Every window the reader cut is predicted, whatever its label or split.
    har = read_har_source(source, options)
    unknown = sorted(set(har.classes) - set(run_meta["classes"]))
    if unknown:
        known = ", ".join(run_meta["classes"])
        raise DataError(f"{source}: class(es) {', '.join(unknown)} unknown to the model (classes: {known})")
    if har.channels != run_meta["channels"]:
        raise DataError(f"{source}: channels {har.channels} differ from the model's {run_meta['channels']}")
    if har.window != run_meta["window"]:
        raise DataError(f"{source}: series of {har.window} readings, but the model takes windows of {run_meta['window']}")
    if len(har.windows.x) == 0:
        raise DataError(f"{source}: no window of {run_meta['window']} readings to predict")
    return har.windows.x, har.windows.ids


def write_csv_atomic(frame: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, frame.to_csv(index=False, float_format="%.6f"))


def predict_har(run, source: str, split_name: str | None, probabilities: bool, load_model) -> pd.DataFrame:
    meta = run.data_meta
    source_path = Path(source)
    if source_path.is_dir() and (source_path / META_FILE).is_file():
        x, ids = windows_from_data_dir(source_path, meta, split_name)
    else:
        if split_name is not None:
            raise UsageError("--split applies only when INPUT is a prepared DATA_DIR")
        x, ids = windows_from_source(source, meta)
    model = load_model(x.shape[1:], f"the windows of {source}")
    logger.info("predicting %d windows", len(x))
    scores = model.predict(x, batch_size=SCORING_BATCH_SIZE, verbose=0)
    classes = np.asarray(meta["classes"])
    frame = pd.DataFrame({"id": ids, "activity": classes[scores.argmax(axis=1)]})
    if probabilities:
        for index, name in enumerate(classes):
            frame[f"prob_{name}"] = scores[:, index]
    return frame


def model_loader(run, exported: Path | None):
    """`load(sample_shape, what)`: the run's model.keras, or with `exported` the file `dltrain export`
    wrote (checked to take samples of the input's shape)."""
    if exported is None:
        return lambda sample_shape, what: run.load_model()

    def load(sample_shape, what):
        from dltrain.core.console import import_tensorflow_quietly
        from dltrain.inference.exported import ExportedModel

        import_tensorflow_quietly()
        model = ExportedModel(exported)
        model.check_fits(sample_shape, what)
        logger.info("scoring with the exported %s model %s", model.format, exported)
        return model

    return load


def predict_run(run_dir: Path, source: str, out: Path, split_name: str | None = None, probabilities: bool = True, tta: bool = False,
                exported: Path | None = None) -> pd.DataFrame:
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a CSV file path")
    run = open_run(run_dir)
    if exported is not None:
        from dltrain.inference.exported import format_of

        format_of(exported)  # a wrong path is one line before any data is read
    load_model = model_loader(run, exported)
    if run.data_meta["task"] == "retina":
        from dltrain.tasks.retina import predict_retina

        frame = predict_retina(run, Path(source), split_name, tta, load_model)
    else:
        frame = predict_har(run, source, split_name, probabilities, load_model)
    write_csv_atomic(frame, out)
    return frame
