"""The device check: each preset built with what `training.resolution` picks on this machine (or on a
described one), a fixed number of training steps on random tensors, and what was in force.

    python bench/gpu_check.py                        # this machine, Keras on TensorFlow (about 5 minutes on a GPU)
    python bench/gpu_check.py --backend jax          # Keras on JAX: TensorFlow is never imported
    python bench/gpu_check.py --smoke                # tiny models, 2 steps: checks the script (CI)
    python bench/gpu_check.py --smoke --machine gpu-8.0 --strategy mirrored
                                                     # what one GPU of compute capability 8.0 resolves to,
                                                     # forced here, data-parallel over this host's devices

It prints, per preset: steps/s and samples/s after a warm-up (the compilation) is done, the precision
policy, XLA and augmentation placement in force, whether the GRU runs cuDNN's kernel, and the peak
device memory (host memory on a CPU). Random tensors stand in for data, so the figures are the device's
alone: no input pipeline, no tf.data (a machine with JAX but not TensorFlow runs it, Keras carried along).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

PRESETS = {  # name: (preset, overrides, input shape, classes, samples of a step)
    "har-gru": ("har-gru", [], (128, 9), 6),
    "retina-cnn": ("retina-cnn", [], (512, 512, 3), 5),
    "retina-512": ("retina-512", [], (512, 512, 3), 5),
    "efficientnet-b0": ("retina-cnn", ["model.name=backbone", "model.backbone=EfficientNetB0"], (512, 512, 3), 5),
}
SMOKE = {  # the same networks made tiny
    "har-gru": ["model.units=8", "model.layers=1", "model.conv_filters=8", "train.batch_size=4"],
    "retina-cnn": ["model.conv_layers=2", "model.conv_filters=4", "model.dense_units=8", "train.batch_size=4"],
    "retina-512": ["model.block_filters=[4,4,8,8,8,8]", "model.dense_units=8", "train.batch_size=4"],
}
SMOKE_SIDE = {"retina-cnn": 32, "retina-512": 256}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny models, 2 steps")
    parser.add_argument(
        "--backend", choices=("tensorflow", "jax"), default=os.environ.get("KERAS_BACKEND", "tensorflow")
    )
    parser.add_argument("--machine", help="resolve for a described machine instead: gpu-<capability>, e.g. gpu-8.0")
    parser.add_argument("--strategy", default=None, help="train.strategy to resolve with (default: the preset's)")
    parser.add_argument(
        "--steps", type=int, default=None, help="timed steps (default 20 on a GPU, 3 on a CPU; smoke 2)"
    )
    parser.add_argument("--only", help="comma-separated presets (default: all): " + ", ".join(PRESETS))
    parser.add_argument("--markdown", type=Path, help="also write the result as a Markdown section here")
    return parser.parse_args()


def check_preset(name: str, options: argparse.Namespace) -> dict:
    from dltrain.config.loading import load_config
    from dltrain.training.devices import configure_devices, describe_machine, device_scope
    from dltrain.training.resolution import Machine, resolve

    preset, overrides, shape, classes = PRESETS[name]
    settings = overrides + (SMOKE.get(name, ["model.dense_units=0"]) if options.smoke else [])
    settings += [f"train.strategy={options.strategy}"] if options.strategy else []
    config = load_config(preset, settings)
    here = describe_machine(options.backend)
    machine = (
        Machine.with_gpus(options.machine.removeprefix("gpu-"), backend=options.backend) if options.machine else here
    )
    resolution = resolve(machine, config)
    if options.machine:  # forced here: the described machine's choices, this host's devices (and --strategy)
        forced = settings + resolution.settings() + ([f"train.strategy={options.strategy}"] if options.strategy else [])
        resolution = resolve(here, load_config(preset, forced))
    if options.smoke and len(shape) == 3:
        shape = (SMOKE_SIDE.get(name, 32),) * 2 + (3,)
    setup = configure_devices(resolution, here)  # what a training applies: precision, replicas
    with device_scope(setup):
        model = build(config, resolution, shape, classes)
        return measure(name, model, config, resolution, shape, classes, options)


def build(config, resolution, shape, classes):
    """The network, behind the layers its task puts in front (standardisation, augmentation), compiled
    with the preset's optimizer and the loss of its head, as a training compiles it."""
    from dltrain.networks import MODELS
    from dltrain.networks.augmentation import is_enabled, with_augmentation
    from dltrain.networks.layers import with_standardisation
    from dltrain.networks.optimizers import OPTIMIZERS

    model = MODELS.get(config.model.name).build(shape, classes, config.model, config.regularization)
    if len(shape) == 2:
        model = with_standardisation(model, np.zeros(shape[-1]), np.ones(shape[-1]))
    elif resolution.augmentation == "model" and is_enabled(config.augment):
        model = with_augmentation(model, config.augment, config.train.seed)
    regression = config.model.head == "regression"
    loss = "mean_squared_error" if regression else "sparse_categorical_crossentropy"
    optimizer = OPTIMIZERS.get(config.optimizer.name)(config.optimizer, config.optimizer.learning_rate)
    model.compile(optimizer=optimizer, loss=loss, jit_compile=resolution.xla)
    return model


def measure(name, model, config, resolution, shape, classes, options) -> dict:
    import keras

    batch = config.train.batch_size * resolution.replicas
    steps = options.steps or (2 if options.smoke else 20 if resolution.device_type == "GPU" else 3)
    rng = np.random.default_rng(0)
    if len(shape) == 3:
        inputs = rng.integers(0, 256, (batch * steps, *shape), dtype=np.uint8)
    else:
        inputs = rng.standard_normal((batch * steps, *shape)).astype(np.float32)
    targets = rng.integers(0, classes, batch * steps)
    targets = targets.astype(np.float32) if config.model.head == "regression" else targets
    # Compiles; two epochs, since under a JAX distribution the step is compiled again once its variables are sharded.
    model.fit(inputs[: batch * 2], targets[: batch * 2], batch_size=batch, epochs=2, verbose=0)
    started = time.perf_counter()
    model.fit(inputs, targets, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    seconds = time.perf_counter() - started
    gru = [layer for layer in all_layers(model) if isinstance(layer, keras.layers.GRU)]
    return {
        "preset": name,
        "steps/s": steps / seconds,
        "samples/s": steps * batch / seconds,
        "batch": batch,
        "precision": keras.config.dtype_policy().name,
        "xla": bool(model.jit_compile),
        "augmentation": resolution.augmentation,
        "cuDNN GRU": (options.backend == "tensorflow" and any(not layer.supports_jit for layer in gru)) if gru else "-",
        "peak memory MiB": peak_memory_mib(options.backend),
    }


def all_layers(model) -> list:
    import keras

    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found += all_layers(layer)
        elif hasattr(layer, "forward_layer"):  # Bidirectional
            found += [layer.forward_layer, layer.backward_layer]
    return found


def peak_memory_mib(backend: str) -> float:
    """The device's peak allocation so far; on a CPU, the process's peak resident memory."""
    if backend == "jax":
        import jax

        stats = jax.local_devices()[0].memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            return stats["peak_bytes_in_use"] / 2**20
    else:
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def main() -> None:
    options = arguments()
    os.environ["KERAS_BACKEND"] = options.backend  # before Keras is imported
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import Report

    from dltrain.training.devices import describe_machine

    names = options.only.split(",") if options.only else list(PRESETS)
    names = [name for name in names if not (options.smoke and name == "efficientnet-b0")]  # minutes to trace
    rows = [check_preset(name, options) for name in names]
    machine = describe_machine(options.backend)
    where = ", ".join(gpu.name for gpu in machine.gpus) or f"CPU ({machine.cpu_devices} device(s))"
    command = " ".join(["python bench/gpu_check.py", *sys.argv[1:]]).replace(f" --markdown {options.markdown}", "")
    report = Report(f"Device check: {options.backend} on {where}", command, list(rows[0]))
    for row in rows:
        report.add(*row.values())
    report.notes.append(
        "Random tensors, no input pipeline; the first two steps (compilation) are not timed. batch: the global "
        "batch (train.batch_size x replicas)."
        + (f" Resolved for {options.machine}, forced on this machine." if options.machine else "")
    )
    report.notes.append(f"TensorFlow imported: {'yes' if 'tensorflow' in sys.modules else 'no'}.")
    report.emit(options.markdown)


if __name__ == "__main__":
    main()
