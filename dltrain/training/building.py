"""A model ready to fit: the network from the registry, wrapped by its task (e.g. the input
standardisation), compiled with the configured optimizer, learning-rate schedule, loss and metrics."""

from __future__ import annotations

from pathlib import Path

from dltrain.config.schema import Config
from dltrain.core.errors import UsageError
from dltrain.data.datadir import DataDir
from dltrain.runs.rundir import HISTORY_FILE, LAST_MODEL_FILE, MODEL_FILE, TENSORBOARD_FOLDER
from dltrain.tasks import task_of


def build_model(data: DataDir, config: Config, steps_per_epoch: int, accelerator: bool = False):
    from dltrain.networks import MODELS
    from dltrain.training.optimizers import OPTIMIZERS, SCHEDULES

    task = task_of(data.meta)
    try:
        network = MODELS.get(config.model.name)(
            data.meta.input_shape, len(data.meta.classes), config.model, config.regularization
        )
    except ValueError as error:  # a builder refusing a combination of settings
        raise UsageError(str(error)) from None
    model = task.wrap_model(network, data, config, accelerator)
    learning_rate = SCHEDULES.get(config.schedule.name)(
        config.schedule, config.optimizer.learning_rate, steps_per_epoch, config.train.epochs
    )
    loss, metrics = task.loss_and_metrics(config)
    optimizer = OPTIMIZERS.get(config.optimizer.name)(config.optimizer, learning_rate)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=config.train.jit_compile)
    return model


def monitor_mode(monitor: str) -> str:
    return "min" if monitor.endswith("loss") else "max"


def build_callbacks(
    config: Config, run_dir: Path, steps_per_epoch: int, resume_state: dict | None = None
) -> tuple[list, object]:
    """The callbacks of one training, in the order they must run, and the divergence watch."""
    import keras

    from dltrain.training.callbacks import DivergenceWatch, LearningRateLogger, ProgressDisplay
    from dltrain.training.checkpoints import LastCheckpoint

    saved = (resume_state or {}).get("callbacks", {})
    watch = DivergenceWatch(resume_state=saved.get("divergence"))
    # Order matters: the learning rate enters the logs before anything reads them, the plateau
    # rule may then cut the rate, the CSV row is written, and last of all the last checkpoint
    # records every counter as it stands at the end of the epoch.
    callbacks = [watch, LearningRateLogger()]
    stateful = stateful_callbacks(config, run_dir, saved, watch)
    callbacks += list(stateful.values())
    callbacks.append(keras.callbacks.CSVLogger(str(run_dir / HISTORY_FILE), append=resume_state is not None))
    if config.train.tensorboard:
        callbacks.append(
            keras.callbacks.TensorBoard(
                log_dir=str(run_dir / TENSORBOARD_FOLDER), histogram_freq=int(config.train.tensorboard_histograms)
            )
        )
    seconds_before = (resume_state or {}).get("train_seconds", 0.0)
    first_epoch = (resume_state or {}).get("epochs_done", 0)
    callbacks.append(
        LastCheckpoint(run_dir / LAST_MODEL_FILE, {**stateful, "divergence": watch}, watch, seconds_before, first_epoch)
    )
    callbacks.append(ProgressDisplay(config.train.epochs, steps_per_epoch, first_epoch))
    return callbacks, watch


def stateful_callbacks(config: Config, run_dir: Path, saved: dict, watch) -> dict:
    """The callbacks whose counters a resumed run must get back: the plateau rule, early stopping
    and the best checkpoint, each restored from `saved` (the last checkpoint's resume state)."""
    from dltrain.training.checkpoints import BestModelCheckpoint, ResumableEarlyStopping, ResumablePlateau

    stopping = config.early_stopping
    monitor, mode, warm_up = stopping.monitor, monitor_mode(stopping.monitor), stopping.start_from_epoch
    stateful = {}
    if config.schedule.name == "plateau":
        stateful["plateau"] = ResumablePlateau(
            monitor=monitor,
            mode=mode,
            factor=config.schedule.factor,
            patience=config.schedule.patience,
            min_lr=config.schedule.min_learning_rate,
            min_delta=stopping.min_delta,
            resume_state=saved.get("plateau"),
        )
    if stopping.patience > 0:
        # restore_best_weights stays off: model.keras already holds the best epoch, and the
        # in-memory weights must stay the last ones for last.keras.
        stateful["early_stopping"] = ResumableEarlyStopping(
            monitor=monitor,
            mode=mode,
            patience=stopping.patience,
            min_delta=stopping.min_delta,
            start_from_epoch=warm_up,
            resume_state=saved.get("early_stopping"),
        )
    if stopping.restore_best:
        stateful["best_checkpoint"] = BestModelCheckpoint(
            run_dir / MODEL_FILE,
            monitor,
            mode,
            stopping.min_delta,
            warm_up,
            resume_state=saved.get("best_checkpoint"),
            watch=watch,
        )
    return stateful
