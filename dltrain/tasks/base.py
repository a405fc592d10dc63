"""The Task interface: everything that differs between activity recognition and retinopathy grading.

Generic code (training, scoring, prediction, export, reproduce) asks the task of a DATA_DIR or a
run (`TASKS.get(meta.task)`) and never compares a task's name. A new task is one module here
implementing this protocol, plus its data readers under `data/`. A `run` handed to a task is a
`runs.rundir.Run` (its config, provenance and data meta); tasks sit below the run layer and only
read those attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from dltrain.core.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from dltrain.config.schema import Config
    from dltrain.data.datadir import DataDir
    from dltrain.data.feeds import TrainingContext, TrainingFeeds


@dataclass
class ScoringInputs:
    """One split ready for `model.predict`: the inputs (an array or a tf.data pipeline of
    (inputs, target) batches, never augmented), the true labels and the sample ids."""

    inputs: Any
    labels: np.ndarray
    ids: np.ndarray


@dataclass
class PredictRequest:
    """What `dltrain predict` asks beyond the run: the INPUT, an optional split of a DATA_DIR, and options."""

    source: str
    split: str | None = None  # with `data`, the split chosen (the requested one, else the DATA_DIR's default)
    probabilities: bool = True
    tta: str = "none"  # a test-time augmentation the task offers (tta_modes)
    load_model: Callable = None  # load_model(sample_shape, what) -> a model with Keras's predict
    blend: bool = True  # use the run's blend of both eyes (retina), when it has one
    rejects: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) of inputs that could not be read
    filled: list[dict] = field(default_factory=list)  # rows the task had to fill in for unreadable inputs
    data: DataDir | None = None  # INPUT as a prepared DATA_DIR, opened and checked against the run's data


class Task(Protocol):
    name: str
    preset: str  # the default preset for data of this task
    models: tuple[str, ...]  # model names whose builders fit this task's data
    headline: tuple[str, ...]  # the metrics reported after training and in comparisons
    supports_distributed: bool  # whether `train --distributed` can train it
    tta_modes: tuple[str, ...]  # test-time augmentations it offers, "none" first
    submission_columns: tuple[str, ...]  # the first columns of `predict`'s CSV
    source_words: tuple[str, ...]  # INPUT words that name a source of the task's own, never a folder (e.g. hapt)

    def check_config(self, config: Config, data: DataDir) -> None:
        """Refuse a config that cannot train on this data, in one line (UsageError)."""

    def loss_and_metrics(self, config: Config) -> tuple[Any, list]:
        """The Keras loss and metrics to compile with; validation metrics follow from them."""

    def training_feeds(self, data: DataDir, config: Config, batch_size: int, context: TrainingContext) -> TrainingFeeds:
        """Training and validation batches; `batch_size` is the global batch, `context.shard` this process's share."""

    def wrap_model(self, model, data: DataDir, config: Config, augmentation: str = "pipeline"):
        """The model as it is saved: e.g. with the training standardisation in front; `augmentation`
        is where augmentation runs (training.resolution): "model" puts its layer first."""

    def tune(self, model, data: DataDir, config: Config) -> dict:
        """Provenance entries fitted on validation after training (e.g. grading thresholds)."""

    def scoring_inputs(self, data: DataDir, split: str) -> ScoringInputs:
        """A labelled split for scoring; unlabelled splits are refused (use predict)."""

    def default_tta(self, run) -> str:
        """The TTA mode when --tta is not given (retina: the one the run's blend was fitted for)."""

    def predict_outputs(self, model, inputs, tta: str = "none") -> np.ndarray:
        """Model outputs for scoring inputs; with a `tta` mode, averaged over its views of each sample."""

    def labels_from_outputs(self, outputs: np.ndarray, run, tta: str = "none") -> np.ndarray:
        """Class indices from model outputs: argmax, or a regression head's thresholds for the TTA mode."""

    def metrics(self, truth: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict:
        """The assignment's metrics on one split."""

    def run_metrics(self, run, scoring: ScoringInputs, outputs: np.ndarray, tta: str) -> dict:
        """Metrics that need more of the run than its model (e.g. a blend of both eyes)."""

    def validation_uses(self, run) -> list[str]:
        """What else the validation split chose in this run (e.g. grade thresholds, a blend)."""

    def cross_validation_folds(self, data: DataDir, folds: int, out: Path) -> list[Path]:
        """DATA_DIRs under `out`, one per fold of the train and val data grouped so that no subject (or
        patient) is in two folds; the test split in none. Refused (UsageError) where the task has none."""

    def check_blend(self, run) -> None:
        """Refuse `dltrain blend` for a run of a task that has no second stage (UsageError)."""

    def blend(self, run, data: DataDir, tta: str) -> Any:
        """Fit and write the run's second stage (retina: both eyes of a patient); refused where there is none."""

    def predict(self, run, request: PredictRequest) -> pd.DataFrame:
        """Predictions for INPUT in the task's submission format."""

    def prepare(self, source: str, out: Path, options: dict[str, Any], workers: int) -> None:
        """Prepare SOURCE into a DATA_DIR at `out` with `prepare`'s keyword options (reproduce's baselines)."""


def check_model_fits(task: Task, config: Config) -> None:
    if config.model.name not in task.models:
        raise UsageError(
            f"model.name {config.model.name!r} does not fit {task.name} data; use "
            f"{' or '.join(map(repr, task.models))} (e.g. --config {task.preset})"
        )


def check_tta(task: Task, tta: str) -> None:
    if tta not in task.tta_modes:
        raise UsageError(f"--tta {tta}: {task.name} runs offer {', '.join(task.tta_modes)}")


def resolve_tta(task: Task, run, tta: str | None) -> str:
    """--tta as given (checked), or when it is not given the task's default for this run."""
    if tta is None:
        return task.default_tta(run)
    check_tta(task, tta)
    return tta
