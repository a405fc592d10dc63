"""tf.data input pipelines over a prepared retina DATA_DIR: parallel decode, cache, augment, prefetch."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from dltrain.data.retina.augment import augmented, is_enabled
from dltrain.data.retina.meta import IMAGES_FOLDER

logger = logging.getLogger("dltrain")
CACHE_LIMIT_BYTES = 4 * 1024**3  # decoded images are kept in memory when they fit in this


def image_dataset(
    data_dir: Path,
    table: pd.DataFrame,
    batch_size: int,
    training: bool = False,
    augment=None,
    seed: int = 0,
    targets=None,
    image_size: int | None = None,
):
    """(image, target) batches; images float32 in 0-255. `targets` defaults to the level column;
    `augment` is an AugmentConfig (training only; None: no augmentation)."""
    import tensorflow as tf

    paths = [str(Path(data_dir) / IMAGES_FOLDER / f"{name}.jpeg") for name in table["image"]]
    if targets is None:
        targets = table["level"].to_numpy(np.int64) if "level" in table else np.zeros(len(table), np.int64)
    dataset = tf.data.Dataset.from_tensor_slices((paths, targets))

    def decode(path, target):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        return tf.cast(image, tf.float32), target

    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    decoded_bytes = len(paths) * image_size * image_size * 3 * 4 if image_size else None  # float32 RGB
    if decoded_bytes is not None and decoded_bytes <= CACHE_LIMIT_BYTES:
        dataset = dataset.cache()  # decode once; later epochs read memory
    if training:
        dataset = dataset.shuffle(min(len(paths), 4096), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if training and augment is not None and is_enabled(augment):
        dataset = augmented(dataset, augment, seed)
    return dataset.prefetch(tf.data.AUTOTUNE)
