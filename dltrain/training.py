"""`dltrain train`: DATA_DIR + config -> a run directory with the best model, history and metrics."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from dltrain.config import Config
from dltrain.dataset import check_output_folder, read_meta, write_json_atomic, write_text_atomic
from dltrain.errors import DataError, UsageError
from dltrain.run_directory import (
    CONFIG_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    PROVENANCE_FILE,
    STATUS_COMPLETE,
    git_commit,
    prepare_run_folder,
    software_versions,
)

logger = logging.getLogger("dltrain")


def check_training_inputs(data_dir: Path, config: Config) -> dict:
    """Everything that can be refused before a run folder exists."""
    meta = read_meta(data_dir)
    task = meta["task"]
    if task not in ("har", "retina"):
        raise DataError(f"{data_dir}: task {task!r} is not supported by this version of dltrain")
    for split in ("train", "val"):
        if not meta.get("splits", {}).get(split):
            raise DataError(f"{data_dir} has no {split} split; re-run 'dltrain prepare' (with --val-fraction > 0 for validation)")
    expected_model = {"har": "gru", "retina": "cnn"}[task]
    if config.model.name != expected_model:
        raise UsageError(f"model.name {config.model.name!r} does not fit {task} data; use {expected_model!r} (e.g. --config {task}-{expected_model})")
    if config.train.batch_size > meta["splits"]["train"]:
        raise UsageError(f"train.batch_size {config.train.batch_size} is larger than the {meta['splits']['train']} training samples")
    if task != "retina" and (config.model.head == "regression" or config.early_stopping.monitor == "val_kappa"):
        raise UsageError("model.head=regression and early_stopping.monitor=val_kappa apply to retina data only")
    if config.model.head == "regression" and config.early_stopping.monitor == "val_accuracy":
        raise UsageError("early_stopping.monitor=val_accuracy needs the classification head; use val_kappa or val_loss")
    if config.model.head == "regression" and config.train.class_weight != "none":
        raise UsageError("train.class_weight=balanced needs the classification head (a regression has no classes to weigh)")
    return meta


def detect_device() -> dict:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
        return {"type": "GPU", "count": len(gpus), "names": details}
    return {"type": "CPU", "count": 1, "names": [f"{os.cpu_count()} logical cores"]}


def with_standardisation(core, mean, std):
    """Prepend the training-set standardisation so the saved model takes raw signals."""
    import keras

    inputs = keras.Input(shape=core.input_shape[1:], name="raw_signals")
    standardised = keras.layers.Normalization(axis=-1, mean=mean, variance=np.square(std), name="standardize")(inputs)
    return keras.Model(inputs, core(standardised), name=core.name)


def train_run(data_dir: Path, run_dir: Path, config: Config, config_source: str | None, force: bool = False) -> dict:
    check_output_folder(run_dir, force, "run")
    meta = check_training_inputs(data_dir, config)
    prepare_run_folder(run_dir, force)
    try:
        return _train_in_folder(data_dir, run_dir, config, config_source, meta)
    except KeyboardInterrupt:
        _mark_status(run_dir, "interrupted")
        logger.warning("interrupted: %s is incomplete (no final metrics); train again to finish", run_dir)
        raise
    except BaseException:
        # A run that failed half-way explains nothing; do not leave it looking like a run.
        shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _mark_status(run_dir: Path, status: str) -> None:
    path = run_dir / PROVENANCE_FILE
    if path.is_file():
        provenance = json.loads(path.read_text())
        provenance["status"] = status
        write_json_atomic(path, provenance)


def build_model(meta: dict, config: Config, steps_per_epoch: int):
    import keras

    from dltrain.models import MODELS
    from dltrain.optimizers import OPTIMIZERS, SCHEDULES

    try:
        model = MODELS.get(config.model.name)(meta["input_shape"], len(meta["classes"]), config.model, config.regularization)
    except ValueError as error:  # a builder refusing a combination of settings
        raise UsageError(str(error)) from None
    if "normalization" in meta:  # activity windows: the training standardisation travels with the model
        normalization = meta["normalization"]
        model = with_standardisation(model, np.asarray(normalization["mean"]), np.asarray(normalization["std"]))
    regression = config.model.head == "regression"
    learning_rate = SCHEDULES.get(config.schedule.name)(config.schedule, config.optimizer.learning_rate, steps_per_epoch, config.train.epochs)
    model.compile(
        optimizer=OPTIMIZERS.get(config.optimizer.name)(config.optimizer, learning_rate),
        loss="mean_squared_error" if regression else "sparse_categorical_crossentropy",
        metrics=["mae"] if regression else ["accuracy"],
    )
    return model


def build_callbacks(config: Config, run_dir: Path, steps_per_epoch: int, kappa=None) -> list:
    import keras

    from dltrain.callbacks import BestModelCheckpoint, LearningRateLogger, ProgressDisplay

    monitor = config.early_stopping.monitor
    mode = "min" if monitor.endswith("loss") else "max"
    warm_up = config.early_stopping.start_from_epoch
    # Order matters: val_kappa and the learning rate enter the logs before anything reads them,
    # the plateau rule may then cut the rate, and the CSV row is written last.
    callbacks = [kappa] if kappa is not None else []
    callbacks.append(LearningRateLogger())
    if config.schedule.name == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, mode=mode, factor=config.schedule.factor, patience=config.schedule.patience, min_lr=config.schedule.min_learning_rate
            )
        )
    if config.early_stopping.patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode=mode, patience=config.early_stopping.patience, start_from_epoch=warm_up, restore_best_weights=True
            )
        )
    return callbacks + [
        BestModelCheckpoint(run_dir / MODEL_FILE, monitor=monitor, mode=mode, start_from_epoch=warm_up),
        keras.callbacks.CSVLogger(str(run_dir / HISTORY_FILE)),
        ProgressDisplay(config.train.epochs, steps_per_epoch),
    ]


def _train_in_folder(data_dir, run_dir, config, config_source, meta) -> dict:
    write_text_atomic(run_dir / CONFIG_FILE, config.to_yaml())

    from dltrain.console import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    from dltrain.callbacks import ValidationKappa
    from dltrain.evaluation import evaluate_and_report
    from dltrain.feeds import predict_outputs, scoring_inputs, training_feeds

    keras.utils.set_random_seed(config.train.seed)
    device = detect_device()
    logger.info("training on %s (%s)", device["type"], ", ".join(device["names"]))
    train_data, val_data, class_weight, val_levels = training_feeds(data_dir, meta, config)
    model = build_model(meta, config, len(train_data))
    provenance = {
        "status": "running",
        "command": " ".join(sys.argv),
        "config_source": config_source,
        "seed": config.train.seed,
        "versions": software_versions(),
        "git_commit": git_commit(),
        "device": device,
        "precision": keras.config.dtype_policy().name,
        "xla": bool(model.jit_compile),
        "cudnn_gru": device["type"] == "GPU" and config.model.name == "gru",  # our GRU keeps every cuDNN condition
        "parameters": int(model.count_params()),
        "data": {"path": str(Path(data_dir).resolve()), "meta": meta},
    }
    write_json_atomic(run_dir / PROVENANCE_FILE, provenance)
    logger.info("model %s: %s parameters; precision %s, XLA %s", config.model.name, f"{model.count_params():,}", provenance["precision"], provenance["xla"])

    kappa = ValidationKappa(val_data, val_levels, config.model.head) if meta["task"] == "retina" else None
    callbacks = build_callbacks(config, run_dir, len(train_data), kappa)
    started = time.perf_counter()
    history = model.fit(
        train_data, validation_data=val_data, epochs=config.train.epochs, callbacks=callbacks, class_weight=class_weight, verbose=0, shuffle=False
    )
    seconds = time.perf_counter() - started
    epochs_run = len(history.history.get("loss", []))
    logger.info("trained %d epochs in %.1f s", epochs_run, seconds)

    # Score the checkpoint exactly as `evaluate` will load it.
    best = keras.saving.load_model(run_dir / MODEL_FILE, safe_mode=True)
    if config.model.head == "regression":
        from dltrain.retina.grading import tune_thresholds

        inputs, levels, _ = scoring_inputs(data_dir, meta, "val")
        provenance["thresholds"] = tune_thresholds(predict_outputs(best, inputs), levels)
        logger.info("regression thresholds tuned on validation: %s", provenance["thresholds"])
    metrics = {}
    for split_name in ("val", "test"):
        if meta["splits"].get(split_name):
            metrics[split_name] = evaluate_and_report(best, data_dir, split_name, meta, run_dir, provenance.get("thresholds"), config.model.head)
    monitor, warm_up = config.early_stopping.monitor, config.early_stopping.start_from_epoch
    judged = history.history.get(monitor, [])[warm_up:]
    headline = ("accuracy", "macro_f1", "quadratic_weighted_kappa")
    provenance.update(
        status=STATUS_COMPLETE,
        epochs_run=epochs_run,
        best_epoch=warm_up + int(np.argmin(judged) if monitor.endswith("loss") else np.argmax(judged)) + 1 if judged else None,
        train_seconds=round(seconds, 1),
        metrics={split: {key: values[key] for key in headline if key in values} for split, values in metrics.items()},
    )
    write_json_atomic(run_dir / PROVENANCE_FILE, provenance)
    return provenance
