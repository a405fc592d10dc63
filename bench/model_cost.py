"""What a retina preset costs: parameters, FLOPs per image (TensorFlow's profiler on the forward
graph), the measured training step on this machine's CPU, and the epoch time on one GPU estimated
from the FLOPs.

    python bench/model_cost.py            # retina-512 and retina-cnn at their sizes (about 2 minutes)
    python bench/model_cost.py --smoke    # retina-cnn at 64 px, to check the script still runs

A training step costs about 3 forward passes (forward, and a backward pass of about twice its
FLOPs); the GPU estimate divides 3 x FLOPs x 35,126 images (Kaggle's training set) by a sustained
rate stated in the table, and leaves out the input pipeline (decoded images cached in memory).
"""

from __future__ import annotations

import time

import numpy as np
from common import Report, bench_arguments

KAGGLE_TRAIN_IMAGES = 35_126
# Sustained mixed-precision rates for a convolutional network of this size: about a third of the
# dense bf16/fp16 peak (A100 312, H100 SXM 989 TFLOP/s), a usual share for such models.
GPU_RATES = {"A100": 100e12, "H100": 300e12}


def forward_flops(model, size: int) -> int:
    import tensorflow as tf
    from tensorflow.python.profiler.model_analyzer import profile
    from tensorflow.python.profiler.option_builder import ProfileOptionBuilder

    forward = tf.function(lambda images: model(images, training=False))
    graph = forward.get_concrete_function(tf.TensorSpec([1, size, size, 3], tf.float32)).graph
    options = ProfileOptionBuilder(ProfileOptionBuilder.float_operation()).with_empty_output().build()
    return int(profile(graph, options=options).total_float_ops)


def step_seconds(model, size: int, batch: int, repeats: int) -> float:
    """Median seconds of one training step on `batch` random images, after a first (tracing) step."""
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32)
    grades = rng.integers(0, 5, batch).astype(np.float32)
    model.compile(optimizer="sgd", loss="mean_squared_error")
    model.train_on_batch(images, grades)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.train_on_batch(images, grades)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main() -> None:
    arguments, _ = bench_arguments(__doc__, "retina-cnn at 64 px", "model-cost", work=False)
    import keras

    from dltrain.config.loading import load_config
    from dltrain.networks import MODELS

    cases = (
        [("retina-cnn", 64, ["model.head=regression"])]
        if arguments.smoke
        else [("retina-512", 512, []), ("retina-cnn", 512, []), ("retina-cnn", 128, [])]
    )
    report = Report(
        "Model cost: parameters, FLOPs, CPU step, estimated GPU epoch",
        f"python bench/model_cost.py{' --smoke' if arguments.smoke else ''}",
        [
            "preset",
            "size px",
            "parameters",
            "GFLOPs / image (forward)",
            "CPU s / image (training)",
            *(f"est. {gpu} s / epoch" for gpu in GPU_RATES),
        ],
    )
    for preset, size, settings in cases:
        config = load_config(preset, settings)
        keras.utils.set_random_seed(0)
        model = MODELS.get(config.model.name).build((size, size, 3), 5, config.model, config.regularization)
        flops = forward_flops(model, size)
        batch = 2 if arguments.smoke else 8
        per_image = step_seconds(model, size, batch, 1 if arguments.smoke else 3) / batch
        epoch = [3 * flops * KAGGLE_TRAIN_IMAGES / rate for rate in GPU_RATES.values()]
        report.add(preset, size, model.count_params(), flops / 1e9, per_image, *epoch)
    report.notes.append(
        f"FLOPs: TensorFlow's profiler on the forward graph of one image (a multiply-add counts 2). Estimated GPU "
        f"epoch: 3 x FLOPs x {KAGGLE_TRAIN_IMAGES:,} images at a sustained "
        + ", ".join(f"{gpu} {rate / 1e12:.0f} TFLOP/s" for gpu, rate in GPU_RATES.items())
        + " (mixed precision, about a third of peak; the input pipeline not counted)."
    )
    report.emit(arguments.markdown)


if __name__ == "__main__":
    main()
