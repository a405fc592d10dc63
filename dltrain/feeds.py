"""What each task feeds Keras: activity windows from .npz arrays, retina images through tf.data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dltrain.dataset import read_split
from dltrain.errors import DataError

SCORING_BATCH_SIZE = 256


def _array_dataset(x, y, batch_size: int, shuffle: bool, seed: int):
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _targets(levels: np.ndarray, head: str) -> np.ndarray:
    return levels.astype(np.float32) if head == "regression" else levels


def training_feeds(data_dir: Path, meta: dict, config) -> tuple:
    """(train dataset, validation dataset, class weights or None, validation labels)."""
    seed, batch_size, head = config.train.seed, config.train.batch_size, config.model.head
    if meta["task"] == "har":
        train, val = read_split(data_dir, "train"), read_split(data_dir, "val")
        train_levels, val_levels = train.y, val.y
        train_data = _array_dataset(train.x, _targets(train.y, head), batch_size, True, seed)
        val_data = _array_dataset(val.x, _targets(val.y, head), batch_size, False, seed)
    else:
        from dltrain.retina.pipeline import augmenter, image_dataset, read_split_table

        train_table, val_table = read_split_table(data_dir, "train"), read_split_table(data_dir, "val")
        train_levels, val_levels = train_table["level"].to_numpy(np.int64), val_table["level"].to_numpy(np.int64)
        augment = augmenter(config.augment, seed)
        train_data = image_dataset(data_dir, train_table, batch_size, True, augment, seed, _targets(train_levels, head))
        val_data = image_dataset(data_dir, val_table, batch_size, targets=_targets(val_levels, head))
    class_weight = None
    if config.train.class_weight == "balanced":  # training refuses it for the regression head
        class_weight = balanced_class_weights(train_levels, len(meta["classes"]))
    return train_data, val_data, class_weight, val_levels


def balanced_class_weights(levels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Inverse class frequency, normalised so that the mean weight over the samples is 1."""
    counts = np.bincount(levels, minlength=num_classes).astype(np.float64)
    present = counts > 0
    return {index: float(len(levels) / (present.sum() * count)) if count else 0.0 for index, count in enumerate(counts)}


def scoring_inputs(data_dir: Path, meta: dict, split: str) -> tuple:
    """(inputs for model.predict, true labels, ids) of one split, never augmented."""
    if meta["task"] == "har":
        data = read_split(data_dir, split)
        return data.x, data.y, data.ids
    from dltrain.retina.pipeline import image_dataset, read_split_table

    table = read_split_table(data_dir, split)
    if "level" not in table:
        raise DataError(f"{data_dir}: the {split} split is unlabelled; use 'dltrain predict' for it")
    return image_dataset(data_dir, table, SCORING_BATCH_SIZE), table["level"].to_numpy(np.int64), table["image"].to_numpy(str)


def predict_outputs(model, inputs, tta: bool = False) -> np.ndarray:
    """Model outputs; with `tta` for images, the mean over the four flips."""
    outputs = model.predict(inputs, batch_size=SCORING_BATCH_SIZE, verbose=0)
    if not tta or isinstance(inputs, np.ndarray):
        return outputs
    import tensorflow as tf

    flips = (tf.image.flip_left_right, tf.image.flip_up_down, lambda images: tf.image.flip_up_down(tf.image.flip_left_right(images)))
    for flip in flips:
        outputs = outputs + model.predict(inputs.map(lambda images, target, flip=flip: (flip(images), target)), verbose=0)
    return outputs / (1 + len(flips))
