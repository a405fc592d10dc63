"""A model ready to fit: the network from the registry, wrapped by its task (e.g. the input
standardisation), compiled with the configured optimizer, learning-rate schedule, loss and metrics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dltrain.config.schema import Config
from dltrain.core.errors import UsageError
from dltrain.data.datadir import DataDir
from dltrain.runs.rundir import HISTORY_FILE, LAST_MODEL_FILE, MODEL_FILE, TENSORBOARD_FOLDER
from dltrain.tasks import task_of


@dataclass(frozen=True)
class Phase:
    """A stretch of training compiled once: with a backbone frozen or not, over epochs [start, end);
    `first` is where this process starts it (later than `start` in a resumed run)."""

    start: int
    first: int
    end: int
    frozen: bool = False


def training_phases(config: Config, first_epoch: int = 0) -> list[Phase]:
    """One phase, or with train.freeze_backbone_epochs = N two: the backbone frozen for N epochs,
    then unfrozen; the phases a run resumed at `first_epoch` still has to train."""
    epochs, frozen = config.train.epochs, config.train.freeze_backbone_epochs
    phases = [Phase(0, 0, frozen, True), Phase(frozen, frozen, epochs)] if frozen else [Phase(0, 0, epochs)]
    return [
        Phase(phase.start, max(phase.start, first_epoch), phase.end, phase.frozen)
        for phase in phases
        if first_epoch < phase.end
    ]


def build_model(data: DataDir, config: Config, steps_per_epoch: int, resolution=None, phase: Phase | None = None):
    """The network wrapped by its task and compiled, as `resolution` (training.resolution) places the
    augmentation and sets XLA; without one, as this machine resolves `config`."""
    task = task_of(data.meta)
    if resolution is None:
        import keras

        from dltrain.training.devices import resolve_here

        resolution = resolve_here(config, keras.backend.backend(), task)
    model = task.wrap_model(build_network(data, config), data, config, resolution.augmentation)
    compile_for(model, data, config, steps_per_epoch, phase or Phase(0, 0, config.train.epochs), resolution.xla)
    return model


def build_network(data: DataDir, config: Config):
    """The configured network for the data's inputs and classes; a builder's refusal (settings that do
    not combine, images too small for it, a weights file of another network) as one UsageError."""
    from dltrain.networks import MODELS

    try:
        return MODELS.get(config.model.name).build(
            data.meta.input_shape, len(data.meta.classes), config.model, config.regularization
        )
    except ValueError as error:
        raise UsageError(str(error)) from None


def compile_for(model, data: DataDir, config: Config, steps_per_epoch: int, phase: Phase, xla: bool) -> None:
    """Compile `model` for a phase: its backbone frozen or trainable, a fresh optimizer; a frozen phase at
    a constant rate, the other with the learning-rate schedule spanning it (schedules count the optimizer's steps)."""
    import keras

    from dltrain.networks.backbone import set_backbone_trainable
    from dltrain.networks.optimizers import OPTIMIZERS, SCHEDULES
    from dltrain.training.loss_scale import scaled_for

    for backbone in layers_named(model, "backbone"):
        set_backbone_trainable(backbone, not phase.frozen, config.model)
    if phase.frozen:  # the head alone learns, at one constant rate; the schedule is the fine-tuning's
        learning_rate = config.optimizer.frozen_learning_rate
    else:
        learning_rate = SCHEDULES.get(config.schedule.name)(
            config.schedule, config.optimizer.learning_rate, steps_per_epoch, phase.end - phase.start
        )
    loss, metrics = task_of(data.meta).loss_and_metrics(config)
    optimizer = OPTIMIZERS.get(config.optimizer.name)(config.optimizer, learning_rate)
    # Loss-scaled by hand under mixed precision: Keras's own scaling skips an overflowing step only
    # where the first replica overflowed (training.loss_scale).
    optimizer = scaled_for(optimizer, keras.config.dtype_policy().name)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=xla)


def build_before_fit(model, batches) -> None:
    """Create the optimizer's and the metrics' variables before `fit` traces its first step.

    Without a distribution strategy Keras on TensorFlow leaves them to the first traced train step,
    and TensorFlow traces a function that creates variables a second time (variables may only be
    created on a first trace): every training traced its step twice (XLA compiles only the trace that
    runs: the cost was the Python tracing).
    This is Keras's own symbolic build, as it runs it under a strategy (tiny runs on 2 cores, side by
    side in one process: activity 4.1 s -> 2.9 s, retina 5.9 s -> 4.8 s, medians of 3). The inputs'
    shape is the model's (pipeline batches may leave the image size open), the targets' the batches'."""
    import keras
    import tensorflow as tf

    symbolic_build = getattr(model, "_symbolic_build", None)  # Keras 3's, since 3.0
    if keras.backend.backend() != "tensorflow" or symbolic_build is None or len(model.inputs) != 1:
        return  # JAX's trainer builds before its first step itself; otherwise fit builds as it did (twice traced)
    inputs, targets = batches.element_spec[:2]
    spec = (tf.TensorSpec(model.inputs[0].shape, inputs.dtype), targets)
    with model.distribute_strategy.scope():
        symbolic_build(data_batch=spec)


def layers_named(model, name: str) -> list:
    """The layers called `name` in `model` and the models nested in it."""
    import keras

    found = []
    for layer in model.layers:
        if layer.name == name:
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found += layers_named(layer, name)
    return found


def carry_over(callbacks: list, phase: Phase) -> None:
    """Callbacks go on from one phase's fit to the next as if it were one: counters kept (Keras resets
    them when a fit begins), the history appended to, the training time summed."""
    import keras

    from dltrain.training.callbacks import ProgressDisplay
    from dltrain.training.checkpoints import LastCheckpoint, ResumableCounters

    for callback in callbacks:
        if isinstance(callback, ResumableCounters):
            callback.resume_state = callback.state()
        elif isinstance(callback, LastCheckpoint):
            callback.seconds_before = callback.train_seconds()
        elif isinstance(callback, ProgressDisplay):
            callback.initial_epoch = phase.first
        elif isinstance(callback, keras.callbacks.CSVLogger):  # the next fit must not start the file anew
            callback.append = True


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
