"""Retinopathy grading: a fundus photograph -> grade 0-4, scored by quadratic weighted kappa;
predictions in the Kaggle submission format `image,level`."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from dltrain.core.errors import DataError, UsageError, failures_explained
from dltrain.data.datadir import DataDir
from dltrain.data.feeds import (
    SCORING_BATCH_SIZE,
    TrainingContext,
    TrainingFeeds,
    balanced_class_weights,
    encode_targets,
    replica_share,
    steps_per_epoch,
)
from dltrain.tasks.base import ExplainRequest, PredictRequest, ScoredSplit, ScoringInputs, Task, check_model_fits
from dltrain.tasks.classification import classification_metrics, crossentropy_or_mse
from dltrain.tasks.retina.blend import Blend, fit_blend, patient_and_eye, read_blend, write_blend
from dltrain.tasks.retina.grading import DEFAULT_THRESHOLDS, grades_from_outputs, quadratic_kappa, tune_thresholds
from dltrain.tasks.retina.photographs import outputs_of_photographs
from dltrain.tasks.retina.screening import referable_metrics, referable_score
from dltrain.tasks.retina.sources import IMAGE_SUFFIXES

logger = logging.getLogger("dltrain")
# Images scored per batch: SCORING_BATCH_SIZE at 128 px, fewer as the side grows (the same pixels per
# batch), so 512 px photographs (and their TTA views, rebatched) never ask for more memory than 128 px ones.
SCORING_PIXELS = SCORING_BATCH_SIZE * 128 * 128
# Test-time augmentation modes and their views (indices into an image's eight rotations and mirrors,
# as RetinaTask._view_outputs computes them): the four flips (identity, up-down, left-right, both =
# 180 degrees), or all eight.
TTA_VIEWS = {"none": (0,), "flips": (0, 2, 4, 6), "dihedral": (0, 1, 2, 3, 4, 5, 6, 7)}


def scoring_batch_size(side: int) -> int:
    return int(min(SCORING_BATCH_SIZE, max(4, SCORING_PIXELS // (side * side))))


class RetinaTask(Task):
    name = "retina"
    preset = "retina-cnn"
    models = ("cnn", "backbone")
    headline = ("accuracy", "macro_f1", "quadratic_weighted_kappa", "referable_auc")
    supports_distributed = True  # --distributed: several processes share every batch
    tta_modes = tuple(TTA_VIEWS)
    submission_columns = ("image", "level")
    source_words = ()  # INPUT is a folder of photographs, one photograph or a DATA_DIR

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
        from dltrain.networks.signal_settings import SIGNAL_KEYS

        signal = [name for name in SIGNAL_KEYS if getattr(config.augment, name)]
        if signal:
            raise UsageError(f"augment.{signal[0]} augments activity signals; photographs take the other augment keys")

    def loss_and_metrics(self, config):
        from dltrain.tasks.retina.kappa import QuadraticKappa

        kappa = QuadraticKappa(head=config.model.head)  # val_kappa comes out of Keras's validation pass
        if config.model.head == "regression":
            return "mean_squared_error", ["mae", kappa]
        loss, metrics = crossentropy_or_mse(config)
        return loss, [*metrics, kappa]

    def training_feeds(self, data: DataDir, config, batch_size: int, context: TrainingContext) -> TrainingFeeds:
        """Per-epoch seeded orders over the images, decoded images cached as train.cache says,
        augmented in the pipeline unless the model does it; with `shard`, this process's share."""
        from dltrain.networks.augmentation import is_enabled
        from dltrain.tasks.retina.pipeline import DECODED_FILE

        (train, val), cache = self._image_feeds(data, config, context.scratch)
        draws = context.passes * len(train.paths)
        steps = steps_per_epoch(draws, batch_size, context.shard is not None, context.replicas)
        train_levels = data.split("train")["level"].to_numpy(np.int64)
        fill = data.meta.image_options.background

        def train_epochs(first_epoch: int, end_epoch: int):
            batching = (batch_size, steps, fill)
            return self._train_batches(train, train_levels, config, context, batching, first_epoch, end_epoch)

        val_data, val_count = self._validation_batches(val, batch_size, context)
        classes = len(data.meta.classes)
        weights = balanced_class_weights(train_levels, classes) if config.train.class_weight == "balanced" else None
        augmentation = context.augmentation if is_enabled(config.augment) else "off"
        notes = {"cache": cache.describe(), "augmentation": augmentation}
        scratch = [context.scratch / DECODED_FILE] if cache.mode == "disk" else []
        val_levels = data.split("val")["level"].to_numpy(np.int64)[:val_count]
        return TrainingFeeds(train_epochs, val_data.prefetch(2), steps, weights, val_levels, notes, scratch)

    def _validation_batches(self, val, batch_size: int, context: TrainingContext):
        """The validation batches (this process's share of full ones when sharded; split evenly over
        replicas) and how many images they hold."""
        import tensorflow as tf

        shard, sharded = context.shard, context.shard is not None
        if sharded and len(val.paths) < batch_size:
            raise DataError(
                f"the val split has {len(val.paths)} images, fewer than one global batch ({batch_size}): every "
                "process needs a full share of a batch; lower train.batch_size"
            )
        images = len(val.paths)
        count = (images // batch_size) * batch_size if sharded else replica_share(images, context.replicas)
        val_data = val.batches(batch_size, tf.data.Dataset.range(count), drop_remainder=sharded, shard=shard)
        if sharded:  # rebatch/shard lose the count of batches; without it Keras warns that validation "ran out of data"
            val_data = val_data.apply(tf.data.experimental.assert_cardinality(len(val.paths) // batch_size))
        return val_data, count

    def _train_batches(self, train, levels, config, context: TrainingContext, batching, first_epoch, end_epoch):
        """`batching`: (global batch size, steps per epoch, the augmentation's fill value)."""
        from dltrain.data.feeds import epoch_batches
        from dltrain.networks.augmentation import augmented, is_enabled

        batch_size, steps, fill = batching
        shard = context.shard

        def batches_of(indices):
            return train.batches(batch_size, indices, drop_remainder=shard is not None, shard=shard)

        settings = config.train
        sampling = (
            settings.sampling,
            settings.sampling_decay,
            context.passes,
            context.replicas,
            settings.sampling_final_weights,
        )
        batches = epoch_batches(levels, config.train.seed, first_epoch, end_epoch, batches_of, *sampling)
        if context.augmentation == "pipeline" and is_enabled(config.augment):
            # Each process its own draws (its rows are other images), from (seed, process, step) alone.
            seed = config.train.seed + ((shard[0] << 32) if shard else 0)
            batches = augmented(batches, config.augment, seed, first_epoch * steps, fill)
        return batches.prefetch(2)

    def _image_feeds(self, data: DataDir, config, scratch):
        """The train and validation feeds, their decoded images cached in one store as train.cache says."""
        from dltrain.tasks.retina.pipeline import ImageFeed, choose_cache, decoded_store, image_paths

        size, classes = data.meta.image_options.size, len(data.meta.classes)
        tables = data.split("train"), data.split("val")
        paths = [image_paths(data.path, table) for table in tables]
        cache = choose_cache(config.train.cache, len(paths[0]) + len(paths[1]), size)
        store = decoded_store(paths[0] + paths[1], size, cache.mode, scratch) if cache.mode != "none" else None
        parts = (store[: len(paths[0])], store[len(paths[0]) :]) if store is not None else (None, None)
        feeds = [
            ImageFeed(split_paths, encode_targets(table["level"].to_numpy(np.int64), config, classes), size, part)
            for split_paths, table, part in zip(paths, tables, parts)
        ]
        return feeds, cache

    def wrap_model(self, model, data: DataDir, config, augmentation: str = "pipeline"):
        """The CNN rescales 0-255 pixels itself; with augmentation in the model, its layer comes first,
        filling what rotations and shifts uncover with the photographs' own background."""
        from dltrain.networks.augmentation import is_enabled, with_augmentation

        if augmentation != "model" or not is_enabled(config.augment):
            return model
        return with_augmentation(model, config.augment, config.train.seed, data.meta.image_options.background)

    def tune(self, model, data: DataDir, config) -> dict:
        """A regression head's grade thresholds, tuned for kappa on the validation split, one set per
        TTA mode: averaged views shrink the outputs towards the middle, so each mode has its own cut points."""
        if config.model.head != "regression":
            return {}
        scoring = self.scoring_inputs(data, "val")
        views = self._view_outputs(model, scoring.inputs, TTA_VIEWS["dihedral"])  # (images, 8 views, 1)
        thresholds = {
            mode: tune_thresholds(views[:, list(TTA_VIEWS[mode])].mean(axis=1), scoring.labels) for mode in TTA_VIEWS
        }
        logger.info("regression thresholds tuned on validation: %s", thresholds["none"])
        return {"thresholds": thresholds}

    def scoring_inputs(self, data: DataDir, split: str) -> ScoringInputs:
        from dltrain.tasks.retina.pipeline import ImageFeed, image_paths

        if split == "unlabelled":
            raise DataError(f"{data.path}: the {split} split is unlabelled; use 'dltrain predict' for it")
        table = data.split(split)
        levels = table["level"].to_numpy(np.int64)
        feed = ImageFeed(image_paths(data.path, table), levels, data.meta.image_options.size)
        batches = feed.batches(scoring_batch_size(data.meta.image_options.size)).prefetch(2)
        return ScoringInputs(batches, levels, table["image"].to_numpy(str))

    def default_tta(self, run) -> str:
        """The mode the run's blend was fitted for, so that evaluate and predict use the blend as fitted."""
        blend = read_blend(run.path)
        if blend is None or blend.tta == "none":
            return "none"
        logger.info("--tta %s: the mode the run's blend.json was fitted for", blend.tta)
        return blend.tta

    def predict_outputs(self, model, inputs, tta: str = "none") -> np.ndarray:
        """Model outputs; with a TTA mode, the mean over its views of each image."""
        if tta == "none":
            return model.predict(inputs, verbose=0)
        return self._view_outputs(model, inputs, TTA_VIEWS[tta]).mean(axis=1)

    def _view_outputs(self, model, inputs, views: tuple[int, ...]) -> np.ndarray:
        """(images, views, outputs): each image's views scored side by side, in one pass over `inputs`
        (a stream of photographs is read once). View k is rotation by 90 x (k % 4) degrees, mirrored
        left-right when k >= 4; the flips are views 0, 2, 4 and 6."""
        import tensorflow as tf

        def expand(images, target):
            mirrored = tf.image.flip_left_right(images)
            chosen = [tf.image.rot90(mirrored if view >= 4 else images, view % 4) for view in views]
            stacked = tf.stack(chosen, axis=1)
            return tf.reshape(stacked, tf.concat([[-1], tf.shape(images)[1:]], axis=0)), tf.repeat(target, len(views))

        side = inputs.element_spec[0].shape[1]  # the views of a batch, rebatched to the images' usual batch size
        views_batches = inputs.map(expand).unbatch().batch(scoring_batch_size(side)).prefetch(2)
        with warnings.catch_warnings():  # a stream of unknown length (unbatch forgets it) ends this way, by design
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            outputs = model.predict(views_batches, verbose=0)
        return outputs.reshape(-1, len(views), *outputs.shape[1:])

    def labels_from_outputs(self, outputs: np.ndarray, run, tta: str = "none") -> np.ndarray:
        return grades_from_outputs(outputs, run.config.model.head, self.thresholds(run, tta))

    def thresholds(self, run, tta: str) -> list[float]:
        """The grade cut points of a regression head for this TTA mode: tuned on validation, else 0.5 ... 3.5."""
        thresholds = run.provenance.thresholds or {}
        regression = run.config.model.head == "regression"
        if regression and thresholds and tta not in thresholds:  # a run from a dltrain that tuned one set only
            logger.warning(
                "%s has no thresholds tuned for --tta %s: grading with those tuned without TTA", run.path, tta
            )
        return list(thresholds.get(tta) or thresholds.get("none") or DEFAULT_THRESHOLDS)

    def metrics(self, truth, predicted, classes) -> dict:
        metrics = classification_metrics(truth, predicted, classes)
        metrics["quadratic_weighted_kappa"] = quadratic_kappa(truth, predicted)
        return metrics

    def run_metrics(self, run, scoring: ScoringInputs, outputs: np.ndarray, tta: str) -> dict:
        """Referable disease (grade 2 or worse) as screening reports it; with a blend of both eyes fitted
        for this TTA mode, its kappa and referable scores beside the per-image ones."""
        grades = self.labels_from_outputs(outputs, run, tta)
        metrics = referable_metrics(scoring.labels, grades, referable_score(outputs))
        blend = read_blend(run.path)
        if blend is None:
            return metrics
        if blend.tta != tta:
            logger.info("no blended kappa: the run's blend.json was fitted for --tta %s, not --tta %s", blend.tta, tta)
            return metrics
        names = list(scoring.ids)
        blended = blend.grades(names, outputs)
        metrics["blended_quadratic_weighted_kappa"] = quadratic_kappa(scoring.labels, blended)
        metrics.update(referable_metrics(scoring.labels, blended, blend.values(names, outputs), "blended_referable"))
        return metrics

    def split_figures(self, model, run, data: DataDir, scored: ScoredSplit, title: str) -> list[str]:
        """The referable-disease ROC curve, the outputs per true grade and the most wrong photographs."""
        from dltrain.tasks.retina.figures import split_figures

        return split_figures(model, run, data, scored, title, self.thresholds(run, scored.tta))

    def explain(self, run, model, request: ExplainRequest, out: Path) -> list[dict]:
        """Grad-CAM over each photograph, from the last convolutional feature map."""
        from dltrain.tasks.retina.figures import explain_photographs

        return explain_photographs(run, model, request, out, lambda outputs: self.labels_from_outputs(outputs, run))

    def validation_uses(self, run) -> list[str]:
        uses = ["the grade thresholds"] if run.config.model.head == "regression" else []
        return uses + (["the blend of both eyes (blend.json)"] if read_blend(run.path) is not None else [])

    def cross_validation_folds(self, data: DataDir, folds: int, out: Path) -> list[Path]:
        raise UsageError("--folds: cross-validation folds are for activity data in this version; retina sweeps "
                         "choose on the validation split")  # fmt: skip

    def check_blend(self, run) -> None:
        """Every retina run can be blended."""

    def blend(self, run, data: DataDir, tta: str) -> Blend:
        """Fit the blend of both eyes on the validation split's outputs and write blend.json."""
        scoring = self.scoring_inputs(data, "val")
        with failures_explained():
            outputs = self.predict_outputs(run.load_model(), scoring.inputs, tta)
        blend = fit_blend(list(scoring.ids), outputs, scoring.labels, tta)
        write_blend(run.path, blend)
        return blend

    def predict(self, run, request: PredictRequest) -> pd.DataFrame:
        """`image,level`, one row per image file: an image that cannot be read gets its fellow eye's
        grade (else the training set's most common one), listed in `request.filled` with the reason."""
        source = Path(request.source)
        if not source.exists():
            raise DataError(f"{source}: no such file or folder")
        blend = read_blend(run.path) if request.blend else None
        if blend is not None and blend.tta != request.tta:  # before any photograph is read
            raise UsageError(
                f"{run.path}'s blend was fitted on --tta {blend.tta} outputs; pass --tta {blend.tta}, or --no-blend"
            )
        if request.data is not None:
            names, outputs = self._outputs_of_data_dir(run, request.data, request)
        else:
            names, outputs = outputs_of_photographs(run, source, request, self.predict_outputs, scoring_batch_size)
        frame = pd.DataFrame({"image": names, "level": self._grades(run, names, outputs, request).astype(int)})
        return self._fill_unreadable(run, frame, request)

    def _grades(self, run, names: list[str], outputs: np.ndarray, request: PredictRequest) -> np.ndarray:
        blend = read_blend(run.path) if request.blend else None
        if blend is None:
            return self.labels_from_outputs(outputs, run, request.tta)
        logger.info(
            "grading both eyes of each patient together (the run's blend.json; --no-blend grades each eye alone)"
        )
        return blend.grades(names, outputs)

    def _fill_unreadable(self, run, frame: pd.DataFrame, request: PredictRequest) -> pd.DataFrame:
        graded = dict(zip(frame["image"], frame["level"]))
        counts = run.data_meta.class_counts.get("train", {})
        common = int(np.argmax([counts.get(name, 0) for name in run.data_meta.classes]))
        for file_name, reason in request.rejects:  # a file's name, or an image name from rejects.csv
            image = Path(file_name).stem if Path(file_name).suffix.lower() in IMAGE_SUFFIXES else file_name
            patient, right = patient_and_eye(image)
            fellow = f"{patient}_{'left' if right else 'right'}" if right is not None else None
            level = graded.get(fellow, common)
            source = fellow if fellow in graded else "the training set's most common grade"
            request.filled.append({"image": image, "level": level, "reason": reason, "filled_from": source})
        filled = pd.DataFrame(request.filled, columns=["image", "level"]) if request.filled else None
        return (
            frame
            if filled is None
            else pd.concat([frame, filled[["image", "level"]]]).sort_values("image", ignore_index=True)
        )

    def _outputs_of_data_dir(self, run, data: DataDir, request: PredictRequest) -> tuple[list[str], np.ndarray]:
        from dltrain.tasks.retina.pipeline import ImageFeed, image_paths
        from dltrain.tasks.retina.prepare import unreadable_unlabelled

        source, split = data.path, request.split
        table = data.split(split)
        if split == "unlabelled":  # the test/ photographs prepare rejected still get a row
            request.rejects.extend(unreadable_unlabelled(source))
        model = request.load_model(tuple(run.data_meta.input_shape), f"the images of {source}")
        feed = ImageFeed(image_paths(source, table), np.zeros(len(table), np.int64), data.meta.image_options.size)
        with failures_explained():
            batches = feed.batches(scoring_batch_size(data.meta.image_options.size)).prefetch(2)
            outputs = self.predict_outputs(model, batches, request.tta)
        return table["image"].tolist(), outputs

    def prepare(self, source: str, out: Path, options: dict, workers: int) -> None:
        from dltrain.tasks.retina.meta import ImageOptions
        from dltrain.tasks.retina.prepare import prepare_retina_source

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


TASK = RetinaTask()
