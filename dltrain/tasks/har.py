"""Activity recognition: inertial windows -> one of the activities (UCI HAR, HAPT, classroom CSVs, ...)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from dltrain.core.errors import DataError, UsageError
from dltrain.data.datadir import DataDir
from dltrain.data.feeds import (
    SCORING_BATCH_SIZE,
    TrainingContext,
    TrainingFeeds,
    array_dataset,
    balanced_class_weights,
    encode_targets,
    epoch_seeded_dataset,
    replica_share,
    steps_per_epoch,
)
from dltrain.data.har.readers import HAPT_SOURCE
from dltrain.tasks.base import PredictRequest, ScoringInputs, check_model_fits
from dltrain.tasks.classification import classification_metrics, crossentropy_or_mse

logger = logging.getLogger("dltrain")


class HarTask:
    name = "har"
    preset = "har-gru"
    models = ("gru",)
    headline = ("accuracy", "macro_f1")
    supports_distributed = True  # --distributed: several processes share every batch
    tta_modes = ("none",)
    submission_columns = ("id", "activity")
    source_words = (HAPT_SOURCE,)  # the package's recordings, even where a folder of that name lies here
    monitors = ("val_loss", "val_accuracy")

    def check_config(self, config, data: DataDir) -> None:
        check_model_fits(self, config)
        if config.early_stopping.monitor not in self.monitors:
            raise UsageError(
                f"early_stopping.monitor={config.early_stopping.monitor} does not apply to activity data; use "
                f"{' or '.join(self.monitors)}"
            )

    def loss_and_metrics(self, config):
        return crossentropy_or_mse(config)

    def training_feeds(self, data: DataDir, config, batch_size: int, context: TrainingContext) -> TrainingFeeds:
        """Every process draws the same seeded batches and keeps its own rows of each (`shard`)."""
        shard = context.shard
        train, val = data.split("train"), data.split("val")
        if shard is not None and len(val.y) < batch_size:
            raise DataError(
                f"{data.path}: {len(val.y)} validation windows, fewer than one global batch of {batch_size}; lower "
                "train.batch_size"
            )
        classes = len(data.meta.classes)
        targets = encode_targets(train.y, config, classes)

        def train_epochs(first_epoch: int, end_epoch: int):
            epochs, passes = (first_epoch, end_epoch), (context.passes, context.replicas)
            return epoch_seeded_dataset(train.x, targets, train.y, batch_size, config, epochs, shard, *passes)

        kept = replica_share(len(val.y), context.replicas)  # every validation batch split evenly
        val_data = array_dataset(val.x[:kept], encode_targets(val.y[:kept], config, classes), batch_size, shard)
        steps = steps_per_epoch(context.passes * len(train.y), batch_size, shard is not None, context.replicas)
        weights = balanced_class_weights(train.y, classes) if config.train.class_weight == "balanced" else None
        return TrainingFeeds(train_epochs, val_data, steps, weights, val.y[:kept])

    def wrap_model(self, model, data: DataDir, config, augmentation: str = "pipeline"):
        """Prepend the training-set standardisation so the saved model takes raw signals."""
        from dltrain.networks.layers import with_standardisation

        normalization = data.meta.normalization
        return with_standardisation(model, normalization.mean, normalization.std)

    def tune(self, model, data: DataDir, config) -> dict:
        return {}

    def scoring_inputs(self, data: DataDir, split: str) -> ScoringInputs:
        windows = data.split(split)
        if (windows.y < 0).any():
            raise DataError(f"{data.path}: the {split} split is unlabelled; use 'dltrain predict' for it")
        return ScoringInputs(windows.x, windows.y, windows.ids)

    def default_tta(self, run) -> str:
        return "none"

    def predict_outputs(self, model, inputs, tta: str = "none") -> np.ndarray:
        return model.predict(inputs, batch_size=SCORING_BATCH_SIZE, verbose=0)

    def labels_from_outputs(self, outputs: np.ndarray, run, tta: str = "none") -> np.ndarray:
        return np.asarray(outputs).argmax(axis=1)

    def metrics(self, truth, predicted, classes) -> dict:
        return classification_metrics(truth, predicted, classes)

    def run_metrics(self, run, scoring: ScoringInputs, outputs: np.ndarray, tta: str) -> dict:
        return {}

    def validation_uses(self, run) -> list[str]:
        return []

    def cross_validation_folds(self, data: DataDir, folds: int, out: Path) -> list[Path]:
        from dltrain.data.har.folds import write_subject_folds

        return write_subject_folds(data, folds, out)

    def check_blend(self, run) -> None:
        raise UsageError("dltrain blend combines the two eyes of a patient: it applies to retina runs only")

    def blend(self, run, data: DataDir, tta: str):
        self.check_blend(run)

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
        from dltrain.data.har.prepare import prepare_har
        from dltrain.data.har.types import HarOptions

        prepare_har(source, out, HarOptions(**options), force=True)


def windows_from_source(source: str, run_meta) -> tuple[np.ndarray, np.ndarray]:
    """Read SOURCE exactly as the training data was cut: same window, step, channels and columns."""
    from dltrain.data.har.readers import read_har_source
    from dltrain.data.har.types import HarOptions

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
