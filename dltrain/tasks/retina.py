"""Retinopathy grading: a fundus photograph -> grade 0-4, scored by quadratic weighted kappa;
predictions in the Kaggle submission format `image,level`."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from dltrain.core.console import progress_bar
from dltrain.core.errors import DataError, UsageError
from dltrain.data.datadir import META_FILE, DataDir
from dltrain.data.feeds import SCORING_BATCH_SIZE, TrainingFeeds, balanced_class_weights, encode_targets
from dltrain.tasks.base import PredictRequest, ScoringInputs, check_model_fits
from dltrain.tasks.grading import DEFAULT_THRESHOLDS, grades_from_outputs, quadratic_kappa, tune_thresholds
from dltrain.tasks.scoring import classification_metrics, crossentropy_or_mse

logger = logging.getLogger("dltrain")
PREDICT_BATCH_SIZE = 64


class RetinaTask:
    name = "retina"
    preset = "retina-cnn"
    models = ("cnn",)
    headline = ("accuracy", "macro_f1", "quadratic_weighted_kappa")
    supports_distributed = False  # --distributed: several processes share every batch
    submission_columns = ("image", "level")

    def check_config(self, config, data: DataDir) -> None:
        check_model_fits(self, config)
        regression = config.model.head == "regression"
        if regression and config.early_stopping.monitor == "val_accuracy":
            raise UsageError(
                "early_stopping.monitor=val_accuracy needs the classification head; use val_kappa or val_loss"
            )
        if regression and config.train.class_weight != "none":
            raise UsageError(
                "train.class_weight=balanced needs the classification head (a regression has no classes to weigh)"
            )

    def loss_and_metrics(self, config):
        from dltrain.tasks.kappa import QuadraticKappa

        kappa = QuadraticKappa(head=config.model.head)  # val_kappa comes out of Keras's validation pass
        if config.model.head == "regression":
            return "mean_squared_error", ["mae", kappa]
        loss, metrics = crossentropy_or_mse(config)
        return loss, [*metrics, kappa]

    def training_feeds(self, data: DataDir, config, batch_size: int, first_epoch: int = 0, shard=None) -> TrainingFeeds:
        from dltrain.data.retina.pipeline import image_dataset

        if shard is not None:
            raise UsageError("--distributed trains activity data only in this version")
        train, val = data.split("train"), data.split("val")
        classes = len(data.meta.classes)
        train_levels, val_levels = train["level"].to_numpy(np.int64), val["level"].to_numpy(np.int64)
        size = data.meta.image_options.size
        train_data = image_dataset(
            data.path,
            train,
            batch_size,
            True,
            config.augment,
            config.train.seed,
            encode_targets(train_levels, config, classes),
            image_size=size,
        )
        val_data = image_dataset(
            data.path, val, batch_size, targets=encode_targets(val_levels, config, classes), image_size=size
        )
        weights = balanced_class_weights(train_levels, classes) if config.train.class_weight == "balanced" else None
        return TrainingFeeds(train_data, val_data, -(-len(train_levels) // batch_size), False, weights, val_levels)

    def wrap_model(self, model, data: DataDir):
        return model  # the CNN rescales 0-255 pixels itself

    def tune(self, model, data: DataDir, config) -> dict:
        """A regression head's grade thresholds, tuned for kappa on the validation split."""
        if config.model.head != "regression":
            return {}
        scoring = self.scoring_inputs(data, "val")
        thresholds = tune_thresholds(self.predict_outputs(model, scoring.inputs), scoring.labels)
        logger.info("regression thresholds tuned on validation: %s", thresholds)
        return {"thresholds": thresholds}

    def scoring_inputs(self, data: DataDir, split: str) -> ScoringInputs:
        from dltrain.data.retina.pipeline import image_dataset

        if split == "unlabelled":
            raise DataError(f"{data.path}: the {split} split is unlabelled; use 'dltrain predict' for it")
        table = data.split(split)
        return ScoringInputs(
            image_dataset(data.path, table, SCORING_BATCH_SIZE),
            table["level"].to_numpy(np.int64),
            table["image"].to_numpy(str),
        )

    def predict_outputs(self, model, inputs, tta: bool = False) -> np.ndarray:
        """Model outputs; with `tta`, the mean over the four flips of each image."""
        outputs = model.predict(inputs, batch_size=SCORING_BATCH_SIZE, verbose=0)
        if not tta:
            return outputs
        import tensorflow as tf

        flips = (
            tf.image.flip_left_right,
            tf.image.flip_up_down,
            lambda images: tf.image.flip_up_down(tf.image.flip_left_right(images)),
        )
        for flip in flips:
            outputs = outputs + model.predict(
                inputs.map(lambda images, target, flip=flip: (flip(images), target)), verbose=0
            )
        return outputs / (1 + len(flips))

    def labels_from_outputs(self, outputs: np.ndarray, run) -> np.ndarray:
        return grades_from_outputs(outputs, run.config.model.head, run.provenance.thresholds or DEFAULT_THRESHOLDS)

    def metrics(self, truth, predicted, classes) -> dict:
        metrics = classification_metrics(truth, predicted, classes)
        metrics["quadratic_weighted_kappa"] = quadratic_kappa(truth, predicted)
        return metrics

    def predict(self, run, request: PredictRequest) -> pd.DataFrame:
        source = Path(request.source)
        if not source.exists():
            raise DataError(f"{source}: no such file or folder")
        if source.is_dir() and (source / META_FILE).is_file():
            names, grades = self._grade_data_dir(run, source, request)
        else:
            if request.split is not None:
                raise UsageError("--split applies only when INPUT is a prepared DATA_DIR")
            names, grades = self._grade_photographs(run, source, request)
        return pd.DataFrame({"image": names, "level": grades.astype(int)})

    def _grade_data_dir(self, run, source: Path, request: PredictRequest) -> tuple[list[str], np.ndarray]:
        from dltrain.data.retina.pipeline import image_dataset

        data = DataDir.open(source)
        run.data_meta.check_compatible(data.meta, str(source))
        table = data.split(data.prediction_split(request.split))
        model = request.load_model(tuple(run.data_meta.input_shape), f"the images of {source}")
        outputs = self.predict_outputs(model, image_dataset(source, table, PREDICT_BATCH_SIZE), request.tta)
        return table["image"].tolist(), self.labels_from_outputs(outputs, run)

    def _grade_photographs(self, run, source: Path, request: PredictRequest) -> tuple[list[str], np.ndarray]:
        import tensorflow as tf

        from dltrain.data.retina.photographs import prepared_chunks, raw_image_paths

        paths = raw_image_paths(source)
        model = request.load_model(tuple(run.data_meta.input_shape), f"the images of {source}")
        names, grades = [], []
        with progress_bar("grading photographs", len(paths)) as advance:
            for images, chunk_names, files_read in prepared_chunks(paths, run.data_meta.image_options, request.rejects):
                if images:
                    stacked = np.stack(images).astype(np.float32)
                    dataset = tf.data.Dataset.from_tensor_slices((stacked, np.zeros(len(stacked)))).batch(
                        PREDICT_BATCH_SIZE
                    )
                    grades.append(self.labels_from_outputs(self.predict_outputs(model, dataset, request.tta), run))
                    names += chunk_names
                advance(files_read)
        for name, reason in request.rejects:
            logger.warning("skipped %s: %s", name, reason)
        if not names:
            name, reason = request.rejects[0] if request.rejects else ("", "")
            raise DataError(f"{source}: none of the {len(paths)} image(s) could be read (first: {name}: {reason})")
        return names, np.concatenate(grades)

    def explain_input_error(self, data: DataDir, error: Exception) -> DataError | None:
        """A prepared image that TensorFlow could not decode, found and named (read only on failure)."""
        if type(error).__name__ not in ("InvalidArgumentError", "DataLossError"):
            return None
        from PIL import Image

        for split in data.available_splits():
            for image in data.split(split)["image"]:
                path = data.meta.image_path(data.path, image)
                try:
                    with Image.open(path) as opened:
                        opened.load()
                except (OSError, SyntaxError, ValueError):
                    return DataError(f"{path}: a prepared image that cannot be decoded; run 'dltrain prepare' again")
        return None

    def prepare(self, source: str, out: Path, options: dict, workers: int) -> None:
        from dltrain.data.retina.meta import ImageOptions
        from dltrain.data.retina.prepare import prepare_retina_source

        options = dict(options)
        image_options = ImageOptions.from_options(size=options.pop("size", 512), graham=options.pop("graham", False))
        prepare_retina_source(
            source,
            out,
            image_options,
            seed=options.pop("seed", 42),
            workers=workers,
            force=True,
            demo_dir=out.parent / "raw",
            **options,
        )
