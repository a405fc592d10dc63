"""The Task interface: everything that differs between activity recognition and retinopathy grading.

Generic code (training, scoring, prediction, export, reproduce) asks the task of a DATA_DIR or a
run (`task_of(meta)`) and never compares a task's name. A new task is one folder under `tasks/`
(or a package of its own, found through an entry point): a subclass of `Task` below, which
overrides what it has, its meta.json schema, its readers and its `prepare` command, registered
with `tasks.registry.register_task`. A `run` handed to a task is a
`runs.rundir.Run` (its config, provenance and data meta); tasks sit below the run layer and only
read those attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    groups: np.ndarray | None = None  # the recording (subject) of each sample, where the task knows it


@dataclass
class ScoredSplit:
    """One labelled split scored: what the task's own figures of it are drawn from."""

    name: str
    scoring: ScoringInputs
    outputs: np.ndarray
    predicted: np.ndarray  # class indices
    tta: str = "none"


@dataclass
class ExplainRequest:
    """What `dltrain explain` asks beyond the run: the INPUTs, a split where INPUT is a DATA_DIR, how many."""

    sources: list[str]
    split: str | None = None
    limit: int = 16
    data: DataDir | None = None  # INPUT as a prepared DATA_DIR, opened and checked against the run's data
    rejects: list[tuple[str, str]] = field(default_factory=list)


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


class Task:
    """A task: what it must say (the attributes without defaults, `training_feeds`, `scoring_inputs`,
    `predict`) and what it may add (tuning, test-time augmentation, a second stage, folds), which
    defaults to nothing or to a plain classifier's behaviour."""

    name: str
    preset: str  # the default preset for data of this task (built in, or registered with the task)
    models: tuple[str, ...]  # model names whose builders fit this task's data
    headline: tuple[str, ...] = ("accuracy", "macro_f1")  # the metrics reported after training and in comparisons
    submission_columns: tuple[str, ...]  # the first columns of `predict`'s CSV
    supports_distributed: bool = False  # whether `train --distributed` can train it
    tta_modes: tuple[str, ...] = ("none",)  # test-time augmentations it offers, "none" first
    source_words: tuple[str, ...] = ()  # INPUT words naming a source of the task's own, never a folder (e.g. hapt)

    def check_config(self, config: Config, data: DataDir) -> None:
        """Refuse a config that cannot train on this data, in one line (UsageError)."""
        check_model_fits(self, config)

    def loss_and_metrics(self, config: Config) -> tuple[Any, list]:
        """The Keras loss and metrics to compile with; validation metrics follow from them."""
        from dltrain.tasks.classification import crossentropy_or_mse

        return crossentropy_or_mse(config)

    def training_feeds(self, data: DataDir, config: Config, batch_size: int, context: TrainingContext) -> TrainingFeeds:
        """Training and validation batches; `batch_size` is the global batch, `context.shard` this process's share."""
        raise NotImplementedError

    def wrap_model(self, model, data: DataDir, config: Config, augmentation: str = "pipeline"):
        """The model as it is saved: e.g. with the training standardisation in front; `augmentation`
        is where augmentation runs (training.resolution): "model" puts its layer first."""
        return model

    def augmentation_placement(self, resolved: str) -> str:
        """Where this task's augmentation runs when the machine resolved `augment.placement` to `resolved`
        ("pipeline" or "model"): as resolved, where the task offers both."""
        return resolved

    def tune(self, model, data: DataDir, config: Config) -> dict:
        """Provenance entries fitted on validation after training (e.g. grading thresholds)."""
        return {}

    def scoring_inputs(self, data: DataDir, split: str) -> ScoringInputs:
        """A labelled split for scoring; unlabelled splits are refused (use predict)."""
        raise NotImplementedError

    def default_tta(self, run) -> str:
        """The TTA mode when --tta is not given (retina: the one the run's blend was fitted for)."""
        return "none"

    def predict_outputs(self, model, inputs, tta: str = "none") -> np.ndarray:
        """Model outputs for scoring inputs; with a `tta` mode, averaged over its views of each sample."""
        from dltrain.data.feeds import SCORING_BATCH_SIZE

        return model.predict(inputs, batch_size=SCORING_BATCH_SIZE, verbose=0)

    def labels_from_outputs(self, outputs: np.ndarray, run, tta: str = "none") -> np.ndarray:
        """Class indices from model outputs: argmax, or a regression head's thresholds for the TTA mode."""
        return np.asarray(outputs).argmax(axis=1)

    def metrics(self, truth: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict:
        """The assignment's metrics on one split."""
        from dltrain.tasks.classification import classification_metrics

        return classification_metrics(truth, predicted, classes)

    def run_metrics(self, run, scoring: ScoringInputs, outputs: np.ndarray, tta: str) -> dict:
        """Metrics that need more of the run than its model (e.g. a blend of both eyes)."""
        return {}

    def validation_uses(self, run) -> list[str]:
        """What else the validation split chose in this run (e.g. grade thresholds, a blend)."""
        return []

    def split_figures(self, model, run, data: DataDir, scored: ScoredSplit, title: str) -> list[str]:
        """Figures of one scored split beyond the confusion matrix, written into the run; their file names."""
        return []

    def explain(self, run, model, request: ExplainRequest, out: Path) -> list[dict]:
        """What made the model's answers for INPUT, as figures written into `out`: one row per figure
        (file, input, predicted, and true where known)."""
        raise UsageError(f"dltrain explain has nothing to show for {self.name} runs")

    def cross_validation_folds(self, data: DataDir, folds: int, out: Path) -> list[Path]:
        """DATA_DIRs under `out`, one per fold of the train and val data grouped so that no subject (or
        patient) is in two folds; the test split in none. Refused (UsageError) where the task has none."""
        raise UsageError(f"{self.name} data has no cross-validation folds; sweep without --folds")

    def training_subset(self, data: DataDir, samples: int, seed: int, out: Path, hold_out: bool = False) -> Path:
        """`out`: a DATA_DIR of `samples` training samples drawn from `data` (seeded, each class keeping
        its share) beside all of its validation samples (the lab's quick budget trains on one); with
        `hold_out`, every other validation subject's samples instead form its test split, which chooses
        nothing (the lab's regularisation gap)."""
        raise UsageError(f"{self.name} data cannot be subsampled; give a budget without train_windows")

    def check_blend(self, run) -> None:
        """Refuse `dltrain blend` for a run of a task that has no second stage (UsageError)."""
        raise UsageError(f"dltrain blend fits a second stage, and {self.name} runs have none")

    def blend(self, run, data: DataDir, tta: str) -> Any:
        """Fit and write the run's second stage (retina: both eyes of a patient); refused where there is none."""
        self.check_blend(run)

    def predict(self, run, request: PredictRequest) -> pd.DataFrame:
        """Predictions for INPUT in the task's submission format."""
        raise NotImplementedError

    def prepare(self, source: str, out: Path, options: dict[str, Any], workers: int) -> None:
        """Prepare SOURCE into a DATA_DIR at `out` with `prepare`'s keyword options (reproduce's baselines)."""
        raise UsageError(f"{self.name} has no baseline preparation; prepare its data with dltrain prepare {self.name}")


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
