"""Where training runs: this machine described as its backend sees it, and a `Resolution` applied
(precision policy, tf.distribute or keras.distribution, memory growth, deterministic ops, each
replica's own random draws). What `auto` becomes is decided in `training.resolution`, not here.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from dltrain.training.resolution import Gpu, Machine, Pinned, Resolution, parse_capability, resolve

logger = logging.getLogger("dltrain")
JAX_DETERMINISM_FLAG = "--xla_gpu_deterministic_ops=true"  # XLA's switch; read once, when JAX starts
REPLICA_SEED_STRIDE = 1_000_003  # added to each replica's random-generator seeds, times its number


@functools.cache
def describe_machine(backend: str) -> Machine:
    """This process's devices as the backend reports them (JAX: after joining the other processes)."""
    return jax_machine() if backend == "jax" else tensorflow_machine()


def tensorflow_machine() -> Machine:
    """The GPUs TensorFlow sees, with their compute capability, and its logical CPU devices. Memory
    growth is switched on first: it must be set before TensorFlow initialises the GPUs."""
    from dltrain.core.console import import_tensorflow_quietly

    tf = import_tensorflow_quietly()
    gpus = tf.config.list_physical_devices("GPU")
    memory_growth = enable_memory_growth(tf, gpus)
    described = []
    for gpu in gpus:
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except (ValueError, RuntimeError):
            details = {}
        described.append(Gpu(details.get("device_name", gpu.name), parse_capability(details.get("compute_capability"))))
    cpus = tf.config.list_physical_devices("CPU")
    logical = tf.config.get_logical_device_configuration(cpus[0]) if cpus else None
    return Machine("tensorflow", tuple(described), len(logical or [None]), memory_growth=memory_growth)


def jax_machine() -> Machine:
    import jax

    local = jax.local_devices()
    gpus = tuple(
        Gpu(device.device_kind, parse_capability(getattr(device, "compute_capability", None)))
        for device in local
        if device.platform == "gpu"
    )
    return Machine("jax", gpus, 0 if gpus else len(local), jax.process_count())


def enable_memory_growth(tf, gpus) -> bool:
    """Let TensorFlow take GPU memory as it needs it instead of all at start (a shared GPU stays usable)."""
    try:
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:  # the GPUs were initialised earlier in this process; the setting is fixed by then
        return False
    return bool(gpus)


def resolve_here(
    config, backend: str, task, pinned: Pinned | None = None, machine: Machine | None = None
) -> Resolution:
    """What `config` resolves to on this machine, or on `machine` where one is described (its refusals included),
    for the `task` it trains: that task says where its augmentation runs (Task.augmentation_placement)."""
    resolution = resolve(machine or describe_machine(backend), config, pinned)
    return replace(resolution, augmentation=task.augmentation_placement(resolution.augmentation))


def resolution_lines(config, resolution: Resolution) -> list[str]:
    """What each `auto` (and each explicit setting) of `config` became here, one line each."""
    train = config.train
    rows = [
        ("train.mixed_precision", train.mixed_precision, resolution.precision),
        ("train.jit_compile", train.jit_compile, "XLA on" if resolution.xla else "XLA off"),
        ("augment.placement", config.augment.placement, resolution.augmentation),
        ("train.strategy", train.strategy, f"{resolution.strategy}, {resolution.replicas} replica(s)"),
        ("train.deterministic", train.deterministic, "deterministic ops" if resolution.deterministic else "off"),
    ]
    machine = f"{resolution.backend} on {resolution.device_type}"
    lines = [f"{key} = {str(value).lower()} -> {result} ({machine})" for key, value, result in rows]
    if config.model.cudnn_recurrent() is not None:
        lines.append(f"GRU kernel -> {'cuDNN' if resolution.cudnn_gru else 'generic (no cuDNN)'}")
    return lines + [f"note: {note}" for note in resolution.notes]


@dataclass
class DeviceSetup:
    resolution: Resolution
    machine: Machine
    strategy: Any  # the tf.distribute strategy to build and fit in; None: the default (and on JAX)

    def device(self) -> dict:
        gpus = self.machine.gpus
        if gpus:
            return {
                "type": "GPU",
                "count": len(gpus),
                "names": [gpu.name for gpu in gpus],
                "compute_capability": [list(gpu.compute_capability or ()) or None for gpu in gpus],
            }
        names = [f"{os.cpu_count()} logical cores"]
        return {"type": "CPU", "count": self.machine.cpu_devices, "names": names}


def configure_devices(resolution: Resolution, machine: Machine) -> DeviceSetup:
    """Apply `resolution` for one training, before any model exists. On JAX, TensorFlow is not imported
    here (bench/gpu_check.py runs this where there is none)."""
    import keras

    for note in resolution.notes:
        logger.warning(note)
    keras.mixed_precision.set_global_policy(resolution.precision)
    strategy = None  # the default: one device, no distribution
    if resolution.strategy == "mirrored":
        import tensorflow as tf

        kind = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
        devices = [device.name for device in tf.config.list_logical_devices(kind)][: resolution.replicas]
        strategy = mirrored_strategy(tuple(devices))
    elif resolution.strategy == "data-parallel" and machine.processes == 1:
        import jax

        # Each batch is split over this host's devices (several processes: dltrain.training.multihost).
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.local_devices()))
    return DeviceSetup(resolution, machine, strategy)


@functools.cache
def mirrored_strategy(devices: tuple[str, ...]):
    """One MirroredStrategy per set of devices for the whole process: a second one would number its
    collective operations from the same start as the first, and a later training in this process
    (a sweep's next point) would then fail with a collective's shape mismatch."""
    import tensorflow as tf

    return tf.distribute.MirroredStrategy(devices=list(devices))


@contextmanager
def device_scope(setup: DeviceSetup):
    """Train inside the strategy; undo the process-global settings afterwards (precision policy,
    deterministic ops, a local distribution), so that a later training in this process starts afresh."""
    import keras

    resolution = setup.resolution
    tensorflow_determinism = resolution.deterministic and resolution.backend == "tensorflow"
    if tensorflow_determinism:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    try:
        with setup.strategy.scope() if setup.strategy is not None else contextlib.nullcontext():
            yield
    finally:
        keras.mixed_precision.set_global_policy("float32")
        if tensorflow_determinism:
            from tensorflow.python.framework import config as tf_config  # the only way to switch it off again

            tf_config.disable_op_determinism()
        if resolution.strategy == "data-parallel" and setup.machine.processes == 1:
            keras.distribution.set_distribution(None)


def request_jax_determinism(deterministic: bool) -> bool:
    """Before JAX starts: XLA's deterministic-ops flag, which JAX reads once. False when JAX had
    started already (the flag would be ignored) or determinism is not asked for."""
    if not deterministic:
        return False
    flags = os.environ.get("XLA_FLAGS", "")
    if JAX_DETERMINISM_FLAG in flags:
        return True
    if jax_started():
        logger.warning("train.deterministic: JAX started in this process before its deterministic flag could be set")
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {JAX_DETERMINISM_FLAG}".strip()
    return True


def jax_started() -> bool:
    import sys

    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge  # no public way to ask whether the backends exist yet
    except ImportError:
        return True
    return bool(xla_bridge.backends_are_initialized())


def jax_determinism_in_force() -> bool:
    return JAX_DETERMINISM_FLAG in os.environ.get("XLA_FLAGS", "")


def distinct_replica_draws(model, setup: DeviceSetup) -> None:
    """Under tf.distribute every replica starts its random generators from the same state, and so
    drew the same dropout masks and augmentations on different images; each replica's generators
    are offset by its number here (after any restore), so that each draws its own."""
    if setup.resolution.strategy != "mirrored" or setup.resolution.replicas < 2:
        return
    import tensorflow as tf

    generators = [variable for variable in model.variables if "seed_generator_state" in variable.path]
    if not generators:
        return

    def offset():
        replica = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int64)
        for variable in generators:
            shift = tf.stack([replica * REPLICA_SEED_STRIDE, tf.constant(0, tf.int64)])
            variable.assign(variable.value + tf.cast(shift, variable.dtype))

    setup.strategy.run(tf.function(offset))
