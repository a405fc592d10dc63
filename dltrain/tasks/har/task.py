"""Activity recognition: inertial windows -> one of the activities (UCI HAR, HAPT, classroom CSVs, ...)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from dltrain.core.errors import DataError, UsageError
from dltrain.data.datadir import DataDir
from dltrain.data.feeds import SCORING_BATCH_SIZE, TrainingContext, TrainingFeeds, array_feeds
from dltrain.tasks.base import ExplainRequest, PredictRequest, ScoredSplit, ScoringInputs, Task, check_model_fits
from dltrain.tasks.har.readers import HAPT_SOURCE

logger = logging.getLogger("dltrain")


class HarTask(Task):
    name = "har"
    preset = "har-gru"
    models = ("gru", "resnet1d", "inception")
    supports_distributed = True  # --distributed: several processes share every batch
    submission_columns = ("id", "activity")
    source_words = (HAPT_SOURCE,)  # the package's recordings, even where a folder of that name lies here
    monitors = ("val_loss", "val_accuracy")

    def check_config(self, config, data: DataDir) -> None:
        check_model_fits(self, config)
        from dltrain.networks.signal_settings import sensor_triads

        if config.augment.signal_rotation and not sensor_triads(data.meta.channels):
            raise UsageError(
                f"augment.signal_rotation rotates sensor triads, channels named <sensor>_x, _y and _z; {data.path} "
                f"has {', '.join(data.meta.channels)}: set augment.signal_rotation=0"
            )
        if config.early_stopping.monitor not in self.monitors:
            raise UsageError(
                f"early_stopping.monitor={config.early_stopping.monitor} does not apply to activity data; use "
                f"{' or '.join(self.monitors)}"
            )

    def training_feeds(self, data: DataDir, config, batch_size: int, context: TrainingContext) -> TrainingFeeds:
        return array_feeds(data, config, batch_size, context)

    def wrap_model(self, model, data: DataDir, config, augmentation: str = "pipeline"):
        """Prepend the training-set standardisation so the saved model takes raw signals, and before
        it the signals' augmentation where the config asks for it (a layer that acts in training only)."""
        from dltrain.networks.layers import with_standardisation
        from dltrain.networks.signal_augmentation import with_signal_augmentation
        from dltrain.networks.signal_settings import is_enabled, sensor_triads

        normalization = data.meta.normalization
        model = with_standardisation(model, normalization.mean, normalization.std)
        if not is_enabled(config.augment):
            return model
        return with_signal_augmentation(model, sensor_triads(data.meta.channels), config.augment, config.train.seed)

    def augmentation_placement(self, resolved: str) -> str:
        """Always the model: the signals' augmentation is a layer of it (wrap_model), on any machine."""
        return "model"

    def scoring_inputs(self, data: DataDir, split: str) -> ScoringInputs:
        windows = data.split(split)
        if (windows.y < 0).any():
            raise DataError(f"{data.path}: the {split} split is unlabelled; use 'dltrain predict' for it")
        return ScoringInputs(windows.x, windows.y, windows.ids, windows.subjects)

    def split_figures(self, model, run, data: DataDir, scored: ScoredSplit, title: str) -> list[str]:
        """A timeline of the true and predicted activity per subject of the split."""
        from dltrain.tasks.har.figures import timelines

        return timelines(run, scored, title)

    def explain(self, run, model, request: ExplainRequest, out: Path) -> list[dict]:
        """The saliency of each reading of each window (the size of the answer's gradient)."""
        from dltrain.tasks.har.figures import explain_windows

        return explain_windows(run, model, request, out, windows_from_source)

    def cross_validation_folds(self, data: DataDir, folds: int, out: Path) -> list[Path]:
        from dltrain.tasks.har.folds import write_subject_folds

        return write_subject_folds(data, folds, out)

    def training_subset(self, data: DataDir, samples: int, seed: int, out: Path, hold_out: bool = False) -> Path:
        from dltrain.tasks.har.subsets import write_training_subset

        return write_training_subset(data, samples, seed, out, hold_out)

    def predict(self, run, request: PredictRequest) -> pd.DataFrame:
        x, ids = self._windows(run, request)
        model = request.load_model(x.shape[1:], f"the windows of {request.source}")
        logger.info("predicting %d windows", len(x))
        scores = model.predict(x, batch_size=SCORING_BATCH_SIZE, verbose=0)
        classes = np.asarray(run.data_meta.classes)
        frame = pd.DataFrame({"id": ids, "activity": classes[scores.argmax(axis=1)]})
        if request.probabilities:
            for index, name in enumerate(classes):
                frame[f"prob_{name}"] = scores[:, index]
        return frame

    def _windows(self, run, request: PredictRequest) -> tuple[np.ndarray, np.ndarray]:
        if request.data is not None:
            windows = request.data.split(request.split)
            return windows.x, windows.ids
        return windows_from_source(request.source, run.data_meta)  # its reader logs the SOURCE it resolved

    def prepare(self, source: str, out: Path, options: dict, workers: int) -> None:
        from dltrain.tasks.har.prepare import prepare_har
        from dltrain.tasks.har.types import HarOptions

        prepare_har(source, out, HarOptions(**options), force=True)


def windows_from_source(source: str, run_meta) -> tuple[np.ndarray, np.ndarray]:
    """Read SOURCE exactly as the training data was cut: same window, step, channels and columns."""
    from dltrain.tasks.har.readers import read_har_source
    from dltrain.tasks.har.types import HarOptions

    trained = run_meta.options
    options = HarOptions(
        window=run_meta.window if run_meta.step else None,
        step=run_meta.step,
        channels=",".join(run_meta.channels),
        transitions=trained.get("transitions", False),
        label_column=trained.get("label_column"),
        time_column=trained.get("time_column"),
        subject_column=trained.get("subject_column"),
    )
    har = read_har_source(source, options)  # every window the reader cut is predicted, whatever its label or split
    unknown = sorted(set(har.classes) - set(run_meta.classes))
    if unknown:
        raise DataError(
            f"{source}: class(es) {', '.join(unknown)} unknown to the model (classes: {', '.join(run_meta.classes)})"
        )
    if har.channels != run_meta.channels:
        raise DataError(f"{source}: channels {har.channels} differ from the model's {run_meta.channels}")
    if har.window != run_meta.window:
        raise DataError(f"{source}: series of {har.window} readings, but the model takes windows of {run_meta.window}")
    if len(har.windows.x) == 0:
        raise DataError(f"{source}: no window of {run_meta.window} readings to predict")
    return har.windows.x, har.windows.ids


TASK = HarTask()
