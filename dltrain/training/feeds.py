"""What each task feeds Keras: activity windows from .npz arrays, retina images through tf.data."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dltrain.data.datadir import read_split
from dltrain.core.errors import DataError

SCORING_BATCH_SIZE = 256


def own_share(dataset, global_batch: int, shard: tuple[int, int] | None):
    """This process's part of every global batch: (process_id, num_processes) -> rows
    [id * b, (id + 1) * b) of each batch, b = global batch / processes. The batches must be full
    (drop_remainder), or a short last batch would leave one process without rows."""
    if shard is None:
        return dataset
    process_id, num_processes = shard
    return dataset.rebatch(global_batch // num_processes).shard(num_processes, process_id)


def _array_dataset(x, y, batch_size: int, shard: tuple[int, int] | None = None):
    import tensorflow as tf

    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size, drop_remainder=shard is not None)
    if shard is None:
        return batches.prefetch(tf.data.AUTOTUNE)
    # rebatch/shard lose the count of batches; without it Keras warns that validation "ran out of data".
    counted = own_share(batches, batch_size, shard).apply(tf.data.experimental.assert_cardinality(len(x) // batch_size))
    return counted.prefetch(tf.data.AUTOTUNE)


def _epoch_seeded_dataset(x, y, batch_size: int, seed: int, first_epoch: int, epochs: int, shard: tuple[int, int] | None = None):
    """Batches of every epoch from `first_epoch` on, each epoch in an order drawn from (seed, epoch)
    alone. tf.data's reshuffling depends on how many epochs this process has iterated, so a resumed
    run would see other orders; with this one it sees exactly the batches it would have seen."""
    import tensorflow as tf

    inputs, targets = tf.constant(x), tf.constant(y)

    def one_epoch(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(len(x), dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=shard is not None)

    batches = own_share(tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch), batch_size, shard)
    return batches.map(lambda rows: (tf.gather(inputs, rows), tf.gather(targets, rows)), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def encode_targets(levels: np.ndarray, config, num_classes: int) -> np.ndarray:
    """Grades as floats for the regression head; one-hot rows where the loss needs them (MSE on the
    probabilities, label smoothing); otherwise the class indices (sparse cross-entropy)."""
    if config.model.head == "regression":
        return levels.astype(np.float32)
    if config.train.loss == "mse" or config.train.label_smoothing:
        return np.eye(num_classes, dtype=np.float32)[levels]
    return levels


@dataclass
class TrainingFeeds:
    train: object
    val: object
    steps_per_epoch: int
    spans_all_epochs: bool  # True: `train` holds every remaining epoch, fit needs steps_per_epoch
    class_weight: dict | None
    val_levels: np.ndarray


def training_feeds(data_dir: Path, meta: dict, config, batch_size: int, first_epoch: int = 0, shard: tuple[int, int] | None = None) -> TrainingFeeds:
    """Training and validation feeds; `batch_size` is the global batch (all replicas together).
    With `shard` (process_id, num_processes), this process's share of every full global batch
    (activity data): every process draws the same batches from the same seed and keeps its rows."""
    seed, num_classes = config.train.seed, len(meta["classes"])
    if meta["task"] == "har":
        train, val = read_split(data_dir, "train"), read_split(data_dir, "val")
        if shard is not None and len(val.y) < batch_size:
            raise DataError(f"{data_dir}: {len(val.y)} validation windows, fewer than one global batch of {batch_size}; lower train.batch_size")
        train_levels, val_levels = train.y, val.y
        train_targets = encode_targets(train.y, config, num_classes)
        train_data = _epoch_seeded_dataset(train.x, train_targets, batch_size, seed, first_epoch, config.train.epochs, shard)
        val_data = _array_dataset(val.x, encode_targets(val.y, config, num_classes), batch_size, shard)
        spans_all_epochs = True
    else:  # training refuses --distributed for retina data
        from dltrain.data.retina.pipeline import image_dataset, read_split_table

        train_table, val_table = read_split_table(data_dir, "train"), read_split_table(data_dir, "val")
        train_levels, val_levels = train_table["level"].to_numpy(np.int64), val_table["level"].to_numpy(np.int64)
        train_data = image_dataset(data_dir, train_table, batch_size, True, config.augment, seed, encode_targets(train_levels, config, num_classes))
        val_data = image_dataset(data_dir, val_table, batch_size, targets=encode_targets(val_levels, config, num_classes))
        spans_all_epochs = False
    class_weight = None
    if config.train.class_weight == "balanced":  # training refuses it for the regression head
        class_weight = balanced_class_weights(train_levels, num_classes)
    steps_per_epoch = len(train_levels) // batch_size if shard is not None else math.ceil(len(train_levels) / batch_size)
    return TrainingFeeds(train_data, val_data, steps_per_epoch, spans_all_epochs, class_weight, val_levels)


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
    from dltrain.data.retina.pipeline import image_dataset, read_split_table

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
