"""Best and last checkpoints, and everything `dltrain train --resume` needs to continue a run.

`model.keras` is the best epoch by `early_stopping.monitor`; `last.keras` is the latest epoch with
its optimizer state. Inside `last.keras` (a zip archive, which Keras reads by member name and so
leaves extra members alone) lies `dltrain-resume.json`: the epochs done, the counters of early
stopping, the plateau rule and the best checkpoint, the learning rate, and the random-generator
states of dropout and noise layers, which Keras does not save. Keeping all of it in one file that
is renamed into place makes each checkpoint whole: a run killed while saving keeps the previous one.
"""

from __future__ import annotations

import io
import json
import math
import time
import zipfile
from pathlib import Path

import keras
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dltrain.core.errors import DataError
from dltrain.core.files import atomic_file
from dltrain.networks.optimizers import current_learning_rate
from dltrain.training.callbacks import weights_are_finite

RESUME_MEMBER = "dltrain-resume.json"
OPTIMIZER_MEMBER = "dltrain-optimizer.npz"


def save_model_atomic(model, path: Path, extra_members: dict[str, bytes] | None = None) -> None:
    """Write `path` whole or not at all (Keras insists on the .keras suffix, hence the name)."""
    with atomic_file(Path(path)) as partial:
        model.save(partial)
        if extra_members:
            with zipfile.ZipFile(partial, "a") as archive:
                for name, payload in extra_members.items():
                    archive.writestr(name, payload)


class ResumeState(BaseModel):
    """dltrain-resume.json inside last.keras, validated before anything is restored from it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    epochs_done: int = Field(ge=1)
    train_seconds: float = Field(ge=0)
    learning_rate: float = Field(ge=0)
    callbacks: dict[str, dict[str, float | int | None]]
    seed_generators: list[list[int]]
    stopped: bool = False  # early stopping ended the training at this epoch: a resume only scores it


def read_resume_state(path: Path) -> dict:
    try:
        with zipfile.ZipFile(path) as archive:
            state = ResumeState.model_validate_json(archive.read(RESUME_MEMBER)).model_dump()
            with np.load(io.BytesIO(archive.read(OPTIMIZER_MEMBER)), allow_pickle=False) as slots:
                state["optimizer_variables"] = [slots[f"variable_{index}"] for index in range(len(slots.files))]
            return state
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:  # ValidationError is a ValueError
        raise DataError(f"{path} holds no resume state ({type(error).__name__}); the run cannot be resumed") from None


def _optimizer_payload(optimizer) -> bytes:
    """The optimizer's variables in order (step counter, rate, slots; with mixed precision also the
    loss scale). Saved by us because Keras skips them on load when the wrappers differ."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        **{f"variable_{index}": np.asarray(variable.numpy()) for index, variable in enumerate(optimizer.variables)},
    )
    return buffer.getvalue()


def _plain(value):
    """JSON-safe numbers: numpy scalars to Python, infinities to None (Keras reads None as 'no best yet')."""
    if value is None:
        return None
    value = float(value)
    return None if math.isinf(value) or math.isnan(value) else value


def _is_improvement(current, best, mode: str, min_delta: float) -> bool:
    if current is None or math.isnan(current):
        return False
    if best is None:
        return True
    return current < best - min_delta if mode == "min" else current > best + min_delta


class ResumableCounters:
    """Mixin for Keras monitor callbacks: `state()` reads the counters, and a state handed to the
    constructor is put back after Keras's own `on_train_begin` has reset them."""

    counter_names: tuple[str, ...] = ()

    def __init__(self, *args, resume_state: dict | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.resume_state = resume_state

    def state(self) -> dict:
        return {
            name: _plain(getattr(self, name)) if name == "best" else int(getattr(self, name))
            for name in self.counter_names
        }

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        for name, value in (self.resume_state or {}).items():
            setattr(self, name, value)


class ResumableEarlyStopping(ResumableCounters, keras.callbacks.EarlyStopping):
    counter_names = ("wait", "best", "best_epoch", "stopped_epoch")


class ResumablePlateau(ResumableCounters, keras.callbacks.ReduceLROnPlateau):
    counter_names = ("wait", "best", "cooldown_counter")


class BestModelCheckpoint(keras.callbacks.Callback):
    """Saves model.keras when the monitored value improves by more than `min_delta`, ignoring the
    warm-up epochs exactly as EarlyStopping's `start_from_epoch` does, so both judge the same epochs.
    A NaN value never counts as an improvement, and a diverged epoch (`watch`) or weights that are
    not finite are never saved: a NaN model's accuracy is a finite number."""

    def __init__(
        self,
        path: Path,
        monitor: str,
        mode: str,
        min_delta: float = 0.0,
        start_from_epoch: int = 0,
        resume_state: dict | None = None,
        watch=None,
    ) -> None:
        super().__init__()
        self.watch = watch
        self.path, self.monitor, self.mode = Path(path), monitor, mode
        self.min_delta, self.start_from_epoch = min_delta, start_from_epoch
        state = resume_state or {}
        self.best, self.best_epoch = state.get("best"), state.get("best_epoch")

    def state(self) -> dict:
        return {"best": _plain(self.best), "best_epoch": self.best_epoch}

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if epoch < self.start_from_epoch or current is None or (self.watch is not None and self.watch.diverged):
            return
        if _is_improvement(float(current), self.best, self.mode, self.min_delta) and weights_are_finite(self.model):
            self.best, self.best_epoch = float(current), epoch
            save_model_atomic(self.model, self.path)


def _seed_generator_variables(model) -> list:
    # In model order: their names carry a process-wide counter, so only the order is stable.
    return [variable for variable in model.variables if "seed_generator_state" in variable.path]


def seed_generator_states(model) -> list[list[int]]:
    """Dropout and noise layers draw from seed generators whose state Keras does not save."""
    return [np.asarray(variable.numpy()).tolist() for variable in _seed_generator_variables(model)]


class LastCheckpoint(keras.callbacks.Callback):
    """Saves last.keras with the resume state at the end of every epoch. Registered after every
    callback whose counters it records, so that it sees them as they stand once the epoch is done."""

    def __init__(
        self, path: Path, stateful_callbacks: dict, watch, seconds_before: float = 0.0, epochs_done: int = 0
    ) -> None:
        super().__init__()
        self.path = Path(path)
        self.stateful_callbacks = stateful_callbacks
        self.watch = watch
        self.epochs_saved = epochs_done or None  # the epochs done when last.keras was last written (a resume's start)
        self.seconds_before = seconds_before  # training time of the sessions before a resume
        self.started = time.perf_counter()

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()

    def train_seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def on_epoch_end(self, epoch, logs=None):
        if self.watch.diverged or not weights_are_finite(self.model):  # nothing to continue from
            return
        self.epochs_saved = epoch + 1
        state = {
            "epochs_done": epoch + 1,
            "train_seconds": self.train_seconds(),
            "learning_rate": current_learning_rate(self.model.optimizer),
            "callbacks": {name: callback.state() for name, callback in self.stateful_callbacks.items()},
            "seed_generators": seed_generator_states(self.model),
            "stopped": bool(self.model.stop_training),  # early stopping (registered before this) decided
        }
        save_model_atomic(
            self.model,
            self.path,
            {RESUME_MEMBER: json.dumps(state), OPTIMIZER_MEMBER: _optimizer_payload(self.model.optimizer)},
        )


def restore_training_state(
    model, last_path: Path, state: dict, restore_learning_rate: bool, restore_optimizer: bool = True
) -> None:
    """Put the weights, optimizer slots, step counter and generator states of `last.keras` into a
    freshly built and compiled model of the same configuration. `restore_optimizer` False: the run
    resumes where a new phase begins with a fresh optimizer (a backbone just unfrozen), as it would have."""
    try:
        saved = keras.saving.load_model(last_path, safe_mode=True, compile=False)
        model.set_weights(saved.get_weights())
    except Exception as error:  # Keras raises many types for a damaged or foreign archive
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(
            f"{last_path} cannot be loaded as this run's last epoch ({reason}); the run cannot be resumed"
        ) from None
    model.optimizer.build(model.trainable_variables)
    fresh = [variable.numpy() for variable in model.optimizer.variables]
    source = state["optimizer_variables"] if restore_optimizer else fresh
    target = model.optimizer.variables
    generators, generator_states = _seed_generator_variables(model), state.get("seed_generators", [])
    if [np.shape(value) for value in source] != [tuple(variable.shape) for variable in target] or len(
        generators
    ) != len(generator_states):
        raise DataError(
            f"{last_path}: its saved state does not match the run's configuration; the run cannot be resumed"
        )
    for value, variable in zip(source, target):
        variable.assign(value)
    for variable, value in zip(generators, generator_states):
        variable.assign(np.asarray(value, dtype=variable.dtype))
    if (
        restore_learning_rate and restore_optimizer
    ):  # a plateau-cut rate; a schedule recomputes its rate from the step counter
        model.optimizer.learning_rate = state["learning_rate"]
