"""`dltrain train`: DATA_DIR + config -> a run directory with the best model, history and metrics."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from dltrain.config.schema import Config
from dltrain.data.datadir import check_output_folder, read_meta, write_json_atomic, write_text_atomic
from dltrain.core.errors import DataError, UsageError
from dltrain.training.multihost import SINGLE_PROCESS, ProcessGroup
from dltrain.runs.rundir import (
    CONFIG_FILE,
    HISTORY_FILE,
    LAST_MODEL_FILE,
    MODEL_FILE,
    PROVENANCE_FILE,
    STATUS_COMPLETE,
    TENSORBOARD_FOLDER,
    git_commit,
    prepare_run_folder,
    read_run_files,
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
        # Keras would run the whole set as one batch anyway; config.yaml records the value used.
        logger.info("train.batch_size %d is larger than the %d training samples: using %d", config.train.batch_size, meta["splits"]["train"], meta["splits"]["train"])
        config.train.batch_size = meta["splits"]["train"]
    if task != "retina" and (config.model.head == "regression" or config.early_stopping.monitor == "val_kappa"):
        raise UsageError("model.head=regression and early_stopping.monitor=val_kappa apply to retina data only")
    if config.model.head == "regression" and config.early_stopping.monitor == "val_accuracy":
        raise UsageError("early_stopping.monitor=val_accuracy needs the classification head; use val_kappa or val_loss")
    if config.model.head == "regression" and config.train.class_weight != "none":
        raise UsageError("train.class_weight=balanced needs the classification head (a regression has no classes to weigh)")
    from dltrain.training.tracking import check_tracking_available

    check_tracking_available(config)
    return meta


def with_standardisation(core, mean, std):
    """Prepend the training-set standardisation so the saved model takes raw signals."""
    import keras

    inputs = keras.Input(shape=core.input_shape[1:], name="raw_signals")
    standardised = keras.layers.Normalization(axis=-1, mean=mean, variance=np.square(std), name="standardize")(inputs)
    return keras.Model(inputs, core(standardised), name=core.name)


def check_distributed(meta: dict, group: ProcessGroup) -> None:
    if not group.distributed:
        return
    if meta["task"] != "har":
        raise UsageError("--distributed trains activity data only in this version: retina's per-epoch val_kappa predicts on one process")


def train_run(data_dir: Path, run_dir: Path, config: Config, config_source: str | None, force: bool = False, extra_callbacks=(),
              group: ProcessGroup = SINGLE_PROCESS) -> dict:
    check_output_folder(run_dir, force, "run")
    meta = check_training_inputs(data_dir, config)
    check_distributed(meta, group)
    if group.distributed:
        from dltrain.training.multihost import join

        join(group)  # after every local check: a process that refuses its inputs never keeps the others waiting
    prepare_run_folder(run_dir, force)
    try:
        write_text_atomic(run_dir / CONFIG_FILE, config.to_yaml())
        return _train_in_folder(data_dir, run_dir, config, meta, {"config_source": config_source}, None, extra_callbacks, group)
    except KeyboardInterrupt:
        _interrupted(run_dir)
        raise
    except BaseException:
        # A run that failed half-way explains nothing; do not leave it looking like a run.
        shutil.rmtree(run_dir, ignore_errors=True)
        raise


def resume_run(run_dir: Path, data_dir: Path | None = None, extra_callbacks=()) -> dict:
    """Continue an interrupted run from the end of its last saved epoch."""
    run_dir = Path(run_dir)
    config, provenance = read_unfinished_run(run_dir)
    data_dir = Path(data_dir) if data_dir is not None else Path(provenance["data"]["path"])
    meta = check_training_inputs(data_dir, config)
    if meta != provenance["data"]["meta"]:
        raise DataError(f"{data_dir} is not the data {run_dir} was trained on (its meta.json differs); resume with the original DATA_DIR")
    last = run_dir / LAST_MODEL_FILE
    if not last.is_file():
        raise DataError(f"{run_dir} stopped before its first epoch ended (no {LAST_MODEL_FILE}); train it again instead")
    from dltrain.training.checkpoints import read_resume_state

    state = read_resume_state(last)
    _trim_history(run_dir / HISTORY_FILE, state["epochs_done"])
    logger.info("resuming %s after epoch %d of %d", run_dir, state["epochs_done"], config.train.epochs)
    try:
        return _train_in_folder(data_dir, run_dir, config, meta, provenance, state, extra_callbacks, SINGLE_PROCESS)
    except KeyboardInterrupt:
        _interrupted(run_dir)
        raise


def _trim_history(path: Path, epochs_done: int) -> None:
    """A run killed after the CSV row of an epoch but before its checkpoint has one row too many;
    that epoch is trained again, so its row goes."""
    if path.is_file():
        history = pd.read_csv(path)
        if len(history) > epochs_done:
            write_text_atomic(path, history.iloc[:epochs_done].to_csv(index=False))


def read_unfinished_run(run_dir: Path) -> tuple[Config, dict]:
    config, provenance = read_run_files(run_dir)
    if provenance.get("status") == STATUS_COMPLETE:
        raise UsageError(f"{run_dir} is complete already; nothing to resume")
    if not isinstance(provenance.get("data"), dict) or "meta" not in provenance["data"]:
        raise DataError(f"{run_dir} stopped before training started; train it again instead")
    return config, provenance


def _interrupted(run_dir: Path) -> None:
    path = run_dir / PROVENANCE_FILE
    if path.is_file():
        provenance = json.loads(path.read_text())
        provenance["status"] = "interrupted"
        write_json_atomic(path, provenance)
    resumable = (run_dir / LAST_MODEL_FILE).is_file()
    logger.warning("interrupted: %s is incomplete%s", run_dir, f"; continue it with: dltrain train --resume {run_dir}" if resumable else "")


def _loss_and_metrics(config: Config):
    import keras

    if config.model.head == "regression":
        return "mean_squared_error", ["mae"]
    # The softmax output keeps its logits, and Keras's TensorFlow cross-entropy reads them from
    # there: the loss is log-softmax of the logits, stable for any logit size.
    if config.train.loss == "mse":
        return keras.losses.MeanSquaredError(), [keras.metrics.CategoricalAccuracy(name="accuracy")]
    if config.train.label_smoothing:
        return keras.losses.CategoricalCrossentropy(label_smoothing=config.train.label_smoothing), [keras.metrics.CategoricalAccuracy(name="accuracy")]
    return "sparse_categorical_crossentropy", ["accuracy"]


def build_model(meta: dict, config: Config, steps_per_epoch: int):
    from dltrain.networks import MODELS
    from dltrain.training.optimizers import OPTIMIZERS, SCHEDULES

    try:
        model = MODELS.get(config.model.name)(meta["input_shape"], len(meta["classes"]), config.model, config.regularization)
    except ValueError as error:  # a builder refusing a combination of settings
        raise UsageError(str(error)) from None
    if "normalization" in meta:  # activity windows: the training standardisation travels with the model
        normalization = meta["normalization"]
        model = with_standardisation(model, np.asarray(normalization["mean"]), np.asarray(normalization["std"]))
    learning_rate = SCHEDULES.get(config.schedule.name)(config.schedule, config.optimizer.learning_rate, steps_per_epoch, config.train.epochs)
    loss, metrics = _loss_and_metrics(config)
    model.compile(optimizer=OPTIMIZERS.get(config.optimizer.name)(config.optimizer, learning_rate), loss=loss, metrics=metrics, jit_compile=config.train.jit_compile)
    return model


def monitor_mode(monitor: str) -> str:
    return "min" if monitor.endswith("loss") else "max"


def build_callbacks(config: Config, run_dir: Path, steps_per_epoch: int, kappa=None, resume_state: dict | None = None) -> tuple[list, object]:
    """The callbacks of one training, in the order they must run, and the NaN watch."""
    import keras

    from dltrain.training.callbacks import LearningRateLogger, ProgressDisplay, StopOnNaN
    from dltrain.training.checkpoints import BestModelCheckpoint, LastCheckpoint, ResumableEarlyStopping, ResumablePlateau

    stopping = config.early_stopping
    monitor, mode, warm_up = stopping.monitor, monitor_mode(stopping.monitor), stopping.start_from_epoch
    saved = (resume_state or {}).get("callbacks", {})
    nan_watch = StopOnNaN()
    # Order matters: val_kappa and the learning rate enter the logs before anything reads them,
    # the plateau rule may then cut the rate, the CSV row is written, and last of all the last
    # checkpoint records every counter as it stands at the end of the epoch.
    callbacks = [nan_watch] + ([kappa] if kappa is not None else []) + [LearningRateLogger()]
    stateful = {}
    if config.schedule.name == "plateau":
        stateful["plateau"] = ResumablePlateau(
            monitor=monitor, mode=mode, factor=config.schedule.factor, patience=config.schedule.patience,
            min_lr=config.schedule.min_learning_rate, min_delta=stopping.min_delta, resume_state=saved.get("plateau"),
        )
    if stopping.patience > 0:
        # restore_best_weights stays off: model.keras already holds the best epoch, and the
        # in-memory weights must stay the last ones for last.keras.
        stateful["early_stopping"] = ResumableEarlyStopping(
            monitor=monitor, mode=mode, patience=stopping.patience, min_delta=stopping.min_delta, start_from_epoch=warm_up,
            resume_state=saved.get("early_stopping"),
        )
    if stopping.restore_best:
        stateful["best_checkpoint"] = BestModelCheckpoint(
            run_dir / MODEL_FILE, monitor, mode, stopping.min_delta, warm_up, resume_state=saved.get("best_checkpoint")
        )
    callbacks += list(stateful.values())
    callbacks.append(keras.callbacks.CSVLogger(str(run_dir / HISTORY_FILE), append=resume_state is not None))
    if config.train.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir / TENSORBOARD_FOLDER), histogram_freq=int(config.train.tensorboard_histograms)))
    seconds_before = (resume_state or {}).get("train_seconds", 0.0)
    callbacks.append(LastCheckpoint(run_dir / LAST_MODEL_FILE, stateful, lambda: nan_watch.diverged_at is not None, seconds_before))
    first_epoch = (resume_state or {}).get("epochs_done", 0)
    callbacks.append(ProgressDisplay(config.train.epochs, steps_per_epoch, first_epoch))
    return callbacks, nan_watch


def _new_provenance(config: Config, data_dir: Path, meta: dict, setup, model, extra: dict) -> dict:
    import keras

    return {
        "status": "running",
        "command": " ".join(sys.argv),
        **extra,
        "seed": config.train.seed,
        "versions": software_versions(),
        "git_commit": git_commit(),
        "device": setup.device,
        **setup.describe(),
        "precision": keras.config.dtype_policy().name,
        "xla": bool(model.jit_compile),
        "deterministic_ops": config.train.deterministic,
        # cuDNN's GRU kernel needs the defaults we keep (tanh, sigmoid, reset_after) and no recurrent dropout.
        "cudnn_gru": setup.device["type"] == "GPU" and config.model.name == "gru" and config.model.recurrent_dropout == 0,
        "parameters": int(model.count_params()),
        "data": {"path": str(Path(data_dir).resolve()), "meta": meta},
    }


def _train_in_folder(data_dir, run_dir, config, meta, provenance, resume_state, extra_callbacks, group: ProcessGroup) -> dict:
    from dltrain.core.console import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras

    from dltrain.training.callbacks import ValidationKappa
    from dltrain.training.checkpoints import BestModelCheckpoint, LastCheckpoint, restore_training_state
    from dltrain.training.devices import check_global_batch, configure_devices, device_scope
    from dltrain.training.feeds import training_feeds

    keras.utils.set_random_seed(config.train.seed)
    setup = configure_devices(config.train, group.distributed)
    logger.info("training on %s (%s), %d replica(s)", setup.device["type"], ", ".join(setup.device["names"]), setup.replicas)
    if config.model.name == "gru" and config.model.recurrent_dropout and setup.device["type"] == "GPU":
        logger.warning("model.recurrent_dropout > 0 rules out the cuDNN GRU kernel: expect training several times slower on this GPU")
    first_epoch = resume_state["epochs_done"] if resume_state else 0
    tracker = None
    try:
        with device_scope(setup, config.train.deterministic):
            global_batch = check_global_batch(config.train, setup.replicas, meta["splits"]["train"])
            shard = (group.process_id, group.num_processes) if group.distributed else None
            feeds = training_feeds(data_dir, meta, config, global_batch, first_epoch, shard)
            model = build_model(meta, config, feeds.steps_per_epoch)
            if resume_state:
                restore_training_state(model, run_dir / LAST_MODEL_FILE, resume_state, config.schedule.name in ("constant", "plateau"))
                provenance.update(status="running", resumed_after_epochs=provenance.get("resumed_after_epochs", []) + [first_epoch])
            else:
                provenance = _new_provenance(config, data_dir, meta, setup, model, provenance)
            if group.distributed:
                provenance["processes"] = group.describe()
            if config.train.tracking == "mlflow" and group.is_chief:
                from dltrain.training.tracking import MlflowTracker

                tracker = MlflowTracker(config, run_dir, provenance)  # records its run id in the provenance
            write_json_atomic(run_dir / PROVENANCE_FILE, provenance)
            logger.info("model %s: %s parameters; precision %s, XLA %s", config.model.name, f"{model.count_params():,}", provenance["precision"], provenance["xla"])

            kappa = ValidationKappa(feeds.val, feeds.val_levels, config.model.head) if meta["task"] == "retina" else None
            callbacks, nan_watch = build_callbacks(config, run_dir, feeds.steps_per_epoch, kappa, resume_state)
            model.fit(
                feeds.train,
                validation_data=feeds.val,
                epochs=config.train.epochs,
                initial_epoch=first_epoch,
                steps_per_epoch=feeds.steps_per_epoch if feeds.spans_all_epochs else None,
                callbacks=callbacks + ([tracker.callback()] if tracker else []) + list(extra_callbacks),
                class_weight=feeds.class_weight,
                verbose=0,
                shuffle=False,
            )
        if group.distributed:
            from dltrain.training.multihost import check_same_weights, leave

            provenance["weights_sha256"] = check_same_weights(model, group)
            leave()  # scoring below loads model.keras on this process alone
        last_checkpoint = next(callback for callback in callbacks if isinstance(callback, LastCheckpoint))
        best_checkpoint = next((callback for callback in callbacks if isinstance(callback, BestModelCheckpoint)), None)
        provenance = _finish(data_dir, run_dir, config, meta, provenance, nan_watch, best_checkpoint, last_checkpoint.train_seconds())
    except BaseException as error:
        if tracker:
            tracker.stop(interrupted=isinstance(error, KeyboardInterrupt))
        raise
    if tracker:
        tracker.finish(run_dir, provenance)
    return provenance


def _finish(data_dir, run_dir, config, meta, provenance, nan_watch, best_checkpoint, seconds) -> dict:
    """Score the kept model on validation and test, as `evaluate` will load it, and close the run."""
    import keras

    from dltrain.inference.evaluate import evaluate_and_report
    from dltrain.training.feeds import predict_outputs, scoring_inputs

    history = pd.read_csv(run_dir / HISTORY_FILE)
    epochs_run = len(history)
    logger.info("trained %d epochs in %.1f s", epochs_run, seconds)
    kept = run_dir / (MODEL_FILE if config.early_stopping.restore_best else LAST_MODEL_FILE)
    if nan_watch.diverged_at is not None:
        epoch, where = nan_watch.diverged_at["epoch"], nan_watch.diverged_at["where"]
        if not kept.is_file():
            raise UsageError(
                f"training diverged (loss became NaN or infinite in epoch {epoch}, {where}) before any epoch could be kept; "
                f"lower optimizer.learning_rate (now {config.optimizer.learning_rate:g}) or set optimizer.clipnorm"
            )
        logger.warning(
            "training diverged (loss NaN or infinite) in epoch %d, %s, and stopped; %s is the %s epoch before it",
            epoch, where, MODEL_FILE, "best" if config.early_stopping.restore_best else "last",
        )
        provenance["diverged_at"] = nan_watch.diverged_at
    if not config.early_stopping.restore_best:
        shutil.copyfile(kept, run_dir / MODEL_FILE)
    best = keras.saving.load_model(run_dir / MODEL_FILE, safe_mode=True, compile=False)  # as Run.load_model
    if config.model.head == "regression":
        from dltrain.tasks.grading import tune_thresholds

        inputs, levels, _ = scoring_inputs(data_dir, meta, "val")
        provenance["thresholds"] = tune_thresholds(predict_outputs(best, inputs), levels)
        logger.info("regression thresholds tuned on validation: %s", provenance["thresholds"])
    metrics = {}
    for split_name in ("val", "test"):
        if meta["splits"].get(split_name):
            metrics[split_name] = evaluate_and_report(best, data_dir, split_name, meta, run_dir, provenance.get("thresholds"), config.model.head)
    headline = ("accuracy", "macro_f1", "quadratic_weighted_kappa")
    provenance.update(
        status=STATUS_COMPLETE,
        epochs_run=epochs_run,
        best_epoch=best_checkpoint.best_epoch + 1 if best_checkpoint and best_checkpoint.best_epoch is not None else epochs_run,
        train_seconds=round(seconds, 1),
        metrics={split: {key: values[key] for key in headline if key in values} for split, values in metrics.items()},
    )
    write_json_atomic(run_dir / PROVENANCE_FILE, provenance)
    return provenance

