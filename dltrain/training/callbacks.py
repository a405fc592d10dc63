"""Keras callbacks of our own: val_kappa, learning rate in the history, NaN watch, progress display."""

from __future__ import annotations

import json
import logging
import math
import time

import keras

from dltrain.core.console import is_interactive, new_progress
from dltrain.training.optimizers import current_learning_rate

logger = logging.getLogger("dltrain")


class StopOnNaN(keras.callbacks.Callback):
    """Keras's TerminateOnNaN, also watching the validation loss (an update can overflow the weights
    at the last step of an epoch), and keeping where it happened so training can say so in one line.
    Runs first at each epoch end, so the last checkpoint never saves a diverged model."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0
        self.diverged_at = None  # {"epoch": 1-based, "where": "batch N" or "validation"}

    def _diverged(self, where: str) -> None:
        if self.diverged_at is None:
            self.diverged_at = {"epoch": self.epoch + 1, "where": where}
        self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._diverged(f"batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("val_loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._diverged("validation")


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
