"""Input pipelines shared by the tasks: tf.data over in-memory arrays, per-epoch seeded orders,
each process's share of a global batch, targets for each loss, class weights."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

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


def steps_per_epoch(samples: int, global_batch: int, sharded: bool, replicas: int = 1) -> int:
    """Batches in an epoch of `samples` draws: full ones only when processes share them (each needs its rows);
    with several replicas, of `replica_share(samples, replicas)` draws."""
    if sharded:
        return samples // global_batch
    return -(-replica_share(samples, replicas) // global_batch)


def replica_share(samples: int, replicas: int) -> int:
    """The draws of an epoch (or the validation samples) that several replicas take: a multiple of their
    number, so that every batch, the last one too, splits evenly and no replica is left with none (an
    empty batch gives batch norm NaN statistics; JAX cannot split an uneven one). At most replicas - 1
    draws go, different ones each epoch (the order is drawn anew)."""
    return samples - samples % replicas if samples >= replicas else samples


def passes_per_epoch(samples: int, global_batch: int, min_steps: int) -> int:
    """How many passes over the training set make one epoch: one, or as many as it takes for at least
    `min_steps` optimizer steps (train.min_steps_per_epoch), so that a small set trains as many steps per
    epoch, and its epoch-based schedule, warm-up and patience mean what they mean on a large one."""
    return max(1, -(-min_steps * global_batch // max(samples, 1)))


def array_dataset(x, y, batch_size: int, shard: tuple[int, int] | None = None):
    import tensorflow as tf

    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size, drop_remainder=shard is not None)
    if shard is None:
        return batches.prefetch(tf.data.AUTOTUNE)
    # rebatch/shard lose the count of batches; without it Keras warns that validation "ran out of data".
    counted = own_share(batches, batch_size, shard).apply(tf.data.experimental.assert_cardinality(len(x) // batch_size))
    return counted.prefetch(tf.data.AUTOTUNE)


def epoch_order(
    labels: np.ndarray, seed: int, epoch, sampling: str = "natural", decay: float = 0.975, passes: int = 1, final=None
):
    """The sample indices of one epoch, drawn from (seed, epoch) alone, so that a resumed run sees
    exactly the order it would have seen (tf.data's own reshuffling depends on how many epochs the
    process has iterated). `natural`: every sample once, shuffled. `balanced`: as many draws, with
    replacement, each class equally likely. `decay`: as team o_O's resampling (sveitser/kaggle_diabetic,
    `ResampleIterator`), each sample's weight is a * (1 / its class's share) + (1 - a) * `final`[its
    class], a = decay ** epoch: balanced at first, then towards `final` (default all 1: the natural
    shares; o_O: 0.975 and [1, 2, 2, 2, 2]). With `passes` > 1, that many such orders one after the
    other, each its own draw."""
    import tensorflow as tf

    orders = [pass_order(labels, seed, epoch, (sampling, decay, final), index) for index in range(passes)]
    return orders[0] if passes == 1 else tf.concat(orders, axis=0)


def class_shares(counts: np.ndarray, sampling: str, decay, final, epoch):
    """Each class's share of an epoch's draws (a tensor summing to 1; absent classes 0)."""
    import tensorflow as tf

    present = counts > 0
    natural = counts / counts.sum()
    if sampling == "balanced":
        return tf.constant(np.where(present, 1.0 / present.sum(), 0.0))
    final = np.ones(len(counts)) if final is None else np.asarray(final, np.float64)
    balancing = tf.pow(tf.constant(decay, tf.float64), tf.cast(epoch, tf.float64))
    # per class: its samples' summed weight, natural share x (a / natural share + (1 - a) x final weight)
    mass = tf.where(present, balancing + (1.0 - balancing) * natural * final, 0.0)
    return mass / tf.reduce_sum(mass)


def pass_order(labels: np.ndarray, seed: int, epoch, sampling: tuple, index: int):
    """One pass of epoch `epoch`: the first is seeded by (seed, epoch), as epochs of one pass always were;
    pass `index` by (seed, epoch + index * 2**32), which no epoch number reaches."""
    import tensorflow as tf

    seeds = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64) + index * 2**32])
    count = len(labels)
    name, decay, final = sampling
    if name == "natural":
        return tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed=seeds)
    counts = np.bincount(labels, minlength=len(final) if final is not None else 0)
    class_share = class_shares(counts, name, decay, final, epoch)
    per_sample = tf.gather(class_share / np.maximum(counts, 1), labels)  # each sample's share of its class's
    logits = tf.math.log(tf.cast(per_sample, tf.float32))[None, :]
    return tf.random.stateless_categorical(logits, count, seeds, dtype=tf.int64)[0]


def epoch_batches(
    labels: np.ndarray,
    seed: int,
    first_epoch: int,
    end_epoch: int,
    batches_of,
    sampling="natural",
    decay=0.975,
    passes: int = 1,
    replicas: int = 1,
    final=None,
):
    """Every epoch in [first_epoch, end_epoch): its order (`epoch_order`) as a dataset of indices, turned into
    batches by `batches_of`; batches never straddle two epochs. With several replicas, each epoch's
    order is cut to `replica_share` of it."""
    import tensorflow as tf

    kept = replica_share(passes * len(labels), replicas)

    def one_epoch(epoch):
        order = epoch_order(labels, seed, epoch, sampling, decay, passes, final)[:kept]
        return batches_of(tf.data.Dataset.from_tensor_slices(order))

    return tf.data.Dataset.range(first_epoch, end_epoch).flat_map(one_epoch)


def epoch_seeded_dataset(
    x,
    y,
    labels: np.ndarray,
    batch_size: int,
    config,
    epochs: tuple[int, int],
    shard: tuple[int, int] | None = None,
    passes: int = 1,
    replicas: int = 1,
):
    """(inputs, targets) batches of arrays for the epochs in [first, end), in `epoch_order`'s orders;
    with `shard`, this process's share of every full global batch; with replicas, batches they split evenly."""
    import tensorflow as tf

    inputs, targets = tf.constant(x), tf.constant(y)

    def batches_of(indices):
        return indices.batch(batch_size, drop_remainder=shard is not None)

    train = config.train
    sampling = (train.sampling, train.sampling_decay, passes, replicas, train.sampling_final_weights)
    rows = epoch_batches(labels, train.seed, *epochs, batches_of, *sampling)
    return (
        own_share(rows, batch_size, shard)
        .map(lambda rows: (tf.gather(inputs, rows), tf.gather(targets, rows)), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def encode_targets(levels: np.ndarray, config, num_classes: int) -> np.ndarray:
    """Grades as floats for the regression head; one-hot rows where the loss needs them (MSE on the
    probabilities, label smoothing); otherwise the class indices (sparse cross-entropy)."""
    if config.model.head == "regression":
        return levels.astype(np.float32)
    if config.train.loss == "mse" or config.train.label_smoothing:
        return np.eye(num_classes, dtype=np.float32)[levels]
    return levels


@dataclass
class TrainingContext:
    """Where a training stands when its feeds are built."""

    first_epoch: int = 0  # epochs already done (a resumed run)
    shard: tuple[int, int] | None = None  # (process id, processes) of a --distributed run
    scratch: Path | None = None  # the run folder, for files the feeds may keep while training
    augmentation: str = "pipeline"  # where augmentation runs (training.resolution): pipeline or model
    passes: int = 1  # passes over the training set per epoch (passes_per_epoch)
    replicas: int = 1  # every batch divides evenly by this: the replicas (and a resumed run's at its start)


@dataclass
class TrainingFeeds:
    """What `fit` takes for one training: the batches, how many make an epoch, class weights."""

    train_epochs: Callable  # train_epochs(first, end): those epochs' batches, in one dataset
    val: object
    steps_per_epoch: int
    class_weight: dict | None
    val_labels: np.ndarray
    notes: dict = field(default_factory=dict)  # what the feeds chose (e.g. the cache), for provenance
    scratch_files: list[Path] = field(default_factory=list)  # removed once the run is complete


def balanced_class_weights(levels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Inverse class frequency, normalised so that the mean weight over the samples is 1."""
    counts = np.bincount(levels, minlength=num_classes).astype(np.float64)
    present = counts > 0
    return {index: float(len(levels) / (present.sum() * count)) if count else 0.0 for index, count in enumerate(counts)}


def array_feeds(data, config, batch_size: int, context: TrainingContext) -> TrainingFeeds:
    """Feeds of a DATA_DIR whose splits are arrays (`.x` samples, `.y` class indices): every process
    draws the same seeded batches and keeps its own rows of each (`context.shard`); validation is split
    evenly over the replicas."""
    train, val, classes, shard = data.split("train"), data.split("val"), len(data.meta.classes), context.shard
    if shard is not None and len(val.y) < batch_size:
        raise DataError(
            f"{data.path}: {len(val.y)} validation samples, fewer than one global batch of {batch_size}; lower "
            "train.batch_size"
        )
    targets = encode_targets(train.y, config, classes)

    def train_epochs(first_epoch: int, end_epoch: int):
        epochs, passes = (first_epoch, end_epoch), (context.passes, context.replicas)
        return epoch_seeded_dataset(train.x, targets, train.y, batch_size, config, epochs, shard, *passes)

    kept = replica_share(len(val.y), context.replicas)
    val_data = array_dataset(val.x[:kept], encode_targets(val.y[:kept], config, classes), batch_size, shard)
    steps = steps_per_epoch(context.passes * len(train.y), batch_size, shard is not None, context.replicas)
    weights = balanced_class_weights(train.y, classes) if config.train.class_weight == "balanced" else None
    return TrainingFeeds(train_epochs, val_data, steps, weights, val.y[:kept])
