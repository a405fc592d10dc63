"""Keras callbacks of our own: val_kappa, learning rate in the history, NaN watch, progress display."""

from __future__ import annotations

import json
import logging
import math
import time

import keras
import numpy as np

from dltrain.core.console import is_interactive, new_progress
from dltrain.networks.optimizers import current_learning_rate

logger = logging.getLogger("dltrain")


# A loss this many times the loss of the run's first batch (the model as initialised) has diverged,
# whether or not the float format overflows to infinity on the way (on some processors a loss of
# 1e30 stays finite for many steps).
EXPLOSION_FACTOR = 1e4


def weights_are_finite(model) -> bool:
    return all(np.isfinite(weights).all() for weights in model.get_weights())


class DivergenceWatch(keras.callbacks.Callback):
    """Stops training when the loss is no longer finite, or has exploded: above EXPLOSION_FACTOR
    times the first batch's loss (at least 1), in a training batch or on validation; or when the
    weights are no longer finite (a bounded loss, such as squared error on probabilities, can stay
    small while the weights overflow). Keeps where it
    happened so training can say so in one line. Runs first at each epoch end, and the checkpoints
    ask it before saving, so no diverged weights are ever kept. Its reference loss travels in the
    resume state, so a resumed run judges by the same yardstick."""

    def __init__(self, resume_state: dict | None = None) -> None:
        super().__init__()
        self.epoch = 0
        self.reference = (resume_state or {}).get("reference")  # the first batch's loss, at least 1
        self.diverged_at = None  # {"epoch": 1-based, "where": "batch N" or "validation"}

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None

    def state(self) -> dict:
        return {"reference": self.reference}

    def exploded(self, loss) -> bool:
        value = float(loss)
        return not math.isfinite(value) or (self.reference is not None and value > EXPLOSION_FACTOR * self.reference)

    def _diverged(self, where: str) -> None:
        if self.diverged_at is None:
            self.diverged_at = {"epoch": self.epoch + 1, "where": where}
        self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        if self.reference is None and math.isfinite(float(loss)):
            self.reference = max(float(loss), 1.0)
        if self.exploded(loss):
            self._diverged(f"batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if "loss" in logs and self.exploded(logs["loss"]):
            self._diverged("training")
        elif "val_loss" in logs and self.exploded(logs["val_loss"]):
            self._diverged("validation")
        elif not weights_are_finite(self.model):
            self._diverged("weights")


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the learning rate the epoch started with to its logs (and so to history.csv): with a
    schedule, the rate at the epoch's first step; with the plateau rule, the rate before any cut."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch_learning_rate = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_learning_rate = current_learning_rate(self.model.optimizer)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.epoch_learning_rate


def _format_logs(logs: dict) -> str:
    order = ["loss", "accuracy", "mae", "val_loss", "val_accuracy", "val_mae", "val_kappa"]
    parts = [f"{key} {logs[key]:.4f}" for key in order if key in logs]
    return "  ".join(parts)


class ProgressDisplay(keras.callbacks.Callback):
    """A Rich bar over epochs and batches on a terminal; one log line per epoch otherwise."""

    def __init__(self, epochs: int, steps_per_epoch: int, initial_epoch: int = 0) -> None:
        super().__init__()
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.initial_epoch = initial_epoch
        self.progress = None
        self.epoch_started = 0.0

    def on_train_begin(self, logs=None):
        if not is_interactive():
            return
        from rich.progress import TextColumn

        self.progress = new_progress(TextColumn("{task.fields[metrics]}"))
        self.progress.start()
        self.epoch_task = self.progress.add_task("epochs", total=self.epochs, completed=self.initial_epoch, metrics="")
        self.batch_task = self.progress.add_task("batches", total=self.steps_per_epoch, metrics="")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_started = time.perf_counter()
        if self.progress:
            self.progress.reset(self.batch_task, total=self.steps_per_epoch, metrics="")

    def on_train_batch_end(self, batch, logs=None):
        if self.progress:
            self.progress.update(self.batch_task, completed=batch + 1, metrics=_format_logs(logs or {}))

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.epoch_started
        line = f"epoch {epoch + 1}/{self.epochs}  {_format_logs(logs or {})}  ({seconds:.1f} s)"
        if self.progress:
            self.progress.update(self.epoch_task, completed=epoch + 1, metrics=_format_logs(logs or {}))
        # The Rich log handler shares the progress display's console, so lines print above the bars.
        logger.info(line)

    def on_train_end(self, logs=None):
        if self.progress:
            self.progress.stop()
            self.progress = None


class EpochSeconds(keras.callbacks.Callback):
    """Keeps the seconds of each epoch's training batches (validation excluded), and writes the
    list as JSON to `path` after each epoch when one is given (the lab plots loss against time)."""

    def __init__(self, path=None) -> None:
        super().__init__()
        self.path = path
        self.seconds: list[float] = []
        self.started = None

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def _close(self) -> None:
        if self.started is None:
            return
        self.seconds.append(time.perf_counter() - self.started)
        self.started = None
        if self.path is not None:
            from dltrain.core.files import write_text_atomic

            write_text_atomic(self.path, json.dumps(self.seconds))

    def on_test_begin(self, logs=None):  # fit's validation pass starts: the epoch's training is over
        self._close()

    def on_epoch_end(self, epoch, logs=None):
        self._close()
