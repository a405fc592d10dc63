"""Where and how training runs: GPUs or CPU, memory growth, mixed precision, XLA, MirroredStrategy.

`configure_devices` is called once per training, before any model exists, and returns what was
actually chosen so that provenance.json can record it (not what the config asked for).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dltrain.core.errors import UsageError

logger = logging.getLogger("dltrain")

TENSOR_CORE_COMPUTE_CAPABILITY = (7, 0)  # Volta and newer run float16 matrix products on tensor cores


@dataclass
class DeviceSetup:
    device: dict
    strategy: Any
    strategy_name: str
    replicas: int
    mixed_precision: bool
    memory_growth: bool
    backend: str = "tensorflow"

    def describe(self) -> dict:
        return {
            "backend": self.backend,
            "strategy": self.strategy_name,
            "replicas": self.replicas,
            "mixed_precision": self.mixed_precision,
            "memory_growth": self.memory_growth,
        }


def _gpu_details(tf, gpus) -> list[dict]:
    details = []
    for gpu in gpus:
        try:
            info = tf.config.experimental.get_device_details(gpu)
        except (ValueError, RuntimeError):
            info = {}
        details.append(
            {"name": info.get("device_name", gpu.name), "compute_capability": info.get("compute_capability")}
        )
    return details


def _enable_memory_growth(tf, gpus) -> bool:
    """Let TensorFlow take GPU memory as it needs it instead of all at start (a shared GPU stays usable)."""
    try:
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:  # the GPUs were initialised earlier in this process; the setting is fixed by then
        return False
    return bool(gpus)


def _resolve_mixed_precision(requested, gpu_details: list[dict], notes: list[str]) -> bool:
    if requested == "auto":
        capabilities = [detail["compute_capability"] for detail in gpu_details]
        return bool(capabilities) and all(
            cap is not None and tuple(cap) >= TENSOR_CORE_COMPUTE_CAPABILITY for cap in capabilities
        )
    if requested and not gpu_details:
        notes.append("train.mixed_precision=true on a CPU: float16 is emulated there and usually slower than float32")
    return bool(requested)


def _mirrored_strategy(tf, gpus):
    """Every GPU; on a CPU-only host, every logical CPU device (one unless configured otherwise)."""
    if gpus:
        return tf.distribute.MirroredStrategy()
    cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=cpus)


def _configure_jax(train_config, distributed: bool, keras, tf) -> DeviceSetup:
    """Keras on JAX: JAX owns the accelerators; TensorFlow (the input pipeline) stays on the CPU."""
    import jax

    try:
        tf.config.set_visible_devices([], "GPU")  # else TensorFlow would take the GPU memory JAX needs
    except RuntimeError:  # TensorFlow's devices were initialised earlier in this process
        pass
    if train_config.strategy == "mirrored":
        raise UsageError("train.strategy=mirrored is TensorFlow's; on --backend jax use --distributed (or one device)")
    local = jax.local_devices()
    platform = local[0].platform.upper()
    device = {"type": platform, "count": len(local), "names": [device.device_kind for device in local]}
    notes: list[str] = []
    mixed_precision = bool(train_config.mixed_precision) and (
        train_config.mixed_precision != "auto" or platform == "GPU"
    )
    if mixed_precision and platform == "CPU":
        notes.append("train.mixed_precision=true on a CPU: float16 is emulated there and usually slower than float32")
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed_precision else "float32")
    for note in notes:
        logger.warning(note)
    # Data-parallel over every device of every process when distributed (the batch size is per replica).
    replicas = len(jax.devices()) if distributed else 1
    name = "jax-data-parallel" if distributed else "default"
    return DeviceSetup(device, tf.distribute.get_strategy(), name, replicas, mixed_precision, False, backend="jax")


def configure_devices(train_config, distributed: bool = False) -> DeviceSetup:
    import keras
    import tensorflow as tf

    if keras.backend.backend() == "jax":
        return _configure_jax(train_config, distributed, keras, tf)
    gpus = tf.config.list_physical_devices("GPU")
    memory_growth = _enable_memory_growth(tf, gpus)
    details = _gpu_details(tf, gpus)
    if gpus:
        device = {
            "type": "GPU",
            "count": len(gpus),
            "names": [detail["name"] for detail in details],
            "compute_capability": [detail["compute_capability"] for detail in details],
        }
    else:
        device = {"type": "CPU", "count": 1, "names": [f"{os.cpu_count()} logical cores"]}
    notes: list[str] = []
    mixed_precision = _resolve_mixed_precision(train_config.mixed_precision, details, notes)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed_precision else "float32")
    if train_config.strategy == "mirrored":
        strategy = _mirrored_strategy(tf, gpus)
    else:
        strategy = tf.distribute.get_strategy()  # the default: one device, no distribution
    replicas = int(strategy.num_replicas_in_sync)
    if train_config.strategy == "mirrored" and replicas == 1:
        notes.append("train.strategy=mirrored found one device only; training runs on it unchanged")
    for note in notes:
        logger.warning(note)
    return DeviceSetup(device, strategy, train_config.strategy, replicas, mixed_precision, memory_growth)


@contextmanager
def device_scope(setup: DeviceSetup, deterministic: bool):
    """Train inside the strategy; undo the process-global settings afterwards (precision policy,
    deterministic ops), so that a later training in the same process starts from the defaults."""
    import keras
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config  # the only way to switch determinism off again

    if deterministic:
        tf.config.experimental.enable_op_determinism()
    try:
        with setup.strategy.scope():
            yield
    finally:
        keras.mixed_precision.set_global_policy("float32")
        if deterministic:
            tf_config.disable_op_determinism()


def check_global_batch(train_config, replicas: int, train_samples: int) -> int:
    global_batch = train_config.batch_size * replicas
    if global_batch > train_samples:
        raise UsageError(
            f"the global batch ({train_config.batch_size} x {replicas} replicas = {global_batch}) is larger than the "
            f"{train_samples} training samples; lower train.batch_size"
        )
    return global_batch
