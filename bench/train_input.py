"""Does the input pipeline starve the model? One epoch through `dltrain train` from a prepared
DATA_DIR vs the same model and the same steps fed from tensors already in memory.

    python bench/train_input.py            # retina CNN at 128 and 256 px, the activity GRU (about 5 minutes)
    python bench/train_input.py --smoke    # tiny sizes, to check the script still runs
    python bench/train_input.py --augmentation-off   # also the 256 px case without augmentation

Both sides run in this process, one after the other, with the same preset, seed and batch size.
`dltrain` is `train_run` (what the command calls) with its callbacks, checkpoints and the
tf.data pipeline (decode, cache, shuffle, augmentation, prefetch); `in memory` is `fit` on the
training split decoded into one tensor beforehand, without callbacks, shuffling or augmentation:
the model's own speed. Epoch seconds count the training batches only (validation excluded);
the figure is the median epoch after the first, which also traces the step and fills the cache.
Ratio = in-memory seconds / dltrain seconds; the goal is >= 0.95.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from common import (
    Report,
    bench_arguments,
    dltrain_epoch_seconds,
    epoch_budget,
    epoch_timer,
    prepare_hapt,
    prepare_retina_demo,
    scaled_data_dir,
    smoke_settings,
    steady_seconds,
    train_samples,
    verdict,
)

GOAL = 0.95
AUGMENTATION_OFF = [
    "augment.flip=false",
    "augment.rotation=false",
    "augment.zoom=0",
    "augment.brightness=0",
    "augment.contrast=0",
]


def training_tensors(data, config) -> tuple[np.ndarray, np.ndarray]:
    """The training split as arrays, decoded exactly as the pipeline decodes it, before any timing."""
    from dltrain.data.feeds import encode_targets
    from dltrain.tasks import task_of

    scoring = task_of(data.meta).scoring_inputs(data, "train")
    inputs = (
        scoring.inputs
        if isinstance(scoring.inputs, np.ndarray)
        else np.concatenate([batch.numpy() for batch, _ in scoring.inputs])
    )
    return inputs.astype(np.float32), encode_targets(scoring.labels, config, len(data.meta.classes))


def in_memory_epochs(data_dir: Path, preset: str, epochs: int, settings: list[str]) -> list[float]:
    import keras
    import tensorflow as tf

    from dltrain.config.loading import load_config
    from dltrain.data.datadir import DataDir
    from dltrain.data.feeds import passes_per_epoch
    from dltrain.training.building import build_model

    config = load_config(preset, epoch_budget(epochs, settings))
    data = DataDir.open(data_dir)
    x, y = training_tensors(data, config)
    keras.utils.set_random_seed(config.train.seed)
    batch = config.train.batch_size
    # The same steps as dltrain's epoch: as many passes as train.min_steps_per_epoch asks (har-gru: 50
    # steps, two passes over half the HAPT windows), batched across the pass boundary as dltrain does.
    passes = passes_per_epoch(len(x), batch, config.train.min_steps_per_epoch)
    steps = -(-passes * len(x) // batch)
    model = build_model(data, config, steps)
    dataset = (
        tf.data.Dataset.from_tensor_slices((tf.constant(x), tf.constant(y)))
        .repeat(passes)
        .batch(batch)
        .cache()
        .prefetch(tf.data.AUTOTUNE)
    )
    timer = epoch_timer()
    model.fit(dataset, epochs=epochs, callbacks=[timer], verbose=0, shuffle=False)
    return timer.seconds


def main() -> None:
    arguments, work = bench_arguments(
        __doc__,
        "tiny sizes, 2 epochs",
        "input",
        extra=lambda parser: parser.add_argument(
            "--augmentation-off", action="store_true", help="add the 256 px case without augmentation"
        ),
    )
    epochs = 2 if arguments.smoke else 3
    raw = work / "retina-raw"
    # (name, DATA_DIR, preset, settings): the retina sets are the simulated demo photographs
    # prepared at each size, their train split repeated (hard links) to a few hundred images.
    cases = []
    for size, images in ((128, 256), (256, 128))[: 1 if arguments.smoke else 2]:
        patients = 8 if arguments.smoke else 40
        prepared = prepare_retina_demo(raw, work / f"retina-{size}px", patients, 64 if arguments.smoke else size)
        train_images = 48 if arguments.smoke else images
        data = scaled_data_dir(prepared, work / f"retina-{size}px-x", train_images / train_samples(prepared))
        settings = smoke_settings("retina-cnn", arguments.smoke)
        cases.append(
            (
                f"retina-cnn {size if not arguments.smoke else 64} px, {train_images} images",
                data,
                "retina-cnn",
                settings,
            )
        )
    hapt = prepare_hapt(work / "hapt")
    har_share = 0.05 if arguments.smoke else 0.5
    har_data = scaled_data_dir(hapt, work / "hapt-half", har_share)
    cases.append(
        (
            f"har-gru, {har_share:.0%} of the HAPT train split",
            har_data,
            "har-gru",
            smoke_settings("har-gru", arguments.smoke),
        )
    )
    if arguments.augmentation_off:  # where augmentation costs the most, the same without it
        name, data, preset, settings = cases[-2]
        cases.append((f"{name}, augmentation off", data, preset, [*settings, *AUGMENTATION_OFF]))

    report = Report(
        "Train input efficiency: dltrain train vs in-memory tensors",
        f"python bench/train_input.py{' --smoke' if arguments.smoke else ''}",
        ["case", "dltrain s/epoch", "in-memory s/epoch (before / after)", "ratio", "goal"],
    )
    for index, (name, data, preset, settings) in enumerate(cases):
        # In memory, dltrain, in memory again: a slow spell of a shared machine shows as a gap
        # between the two in-memory figures instead of landing on one side only.
        before = steady_seconds(in_memory_epochs(data, preset, epochs, settings))
        ours = steady_seconds(dltrain_epoch_seconds(data, work / f"run-{index}", preset, epochs, settings))
        after = steady_seconds(in_memory_epochs(data, preset, epochs, settings))
        ratio = (before + after) / 2 / ours
        report.add(name, ours, f"{before:.2f} / {after:.2f}", ratio, verdict(ratio, GOAL))
    report.notes.append(
        f"{epochs} epochs per training; seconds are the median epoch after the first (which traces the step and fills "
        "the cache), training batches only; ratio = mean of the two in-memory figures / dltrain."
    )
    report.emit(arguments.markdown)


if __name__ == "__main__":
    main()
