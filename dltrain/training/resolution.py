"""What a machine makes of the `auto` settings, decided in one pure function.

`resolve(machine, config)` takes a description of a machine (`Machine`: the Keras backend, its GPUs
and their compute capability, the logical CPU devices, the processes of a --distributed run) and a
config, and returns a `Resolution`: the precision policy, XLA, where augmentation runs, the strategy
and its replicas, determinism and the GRU kernel. Every `auto` is decided here and nowhere else,
so what a GPU user gets is unit-tested on a machine without one, and `Resolution.settings()` forces
the same choices on any machine (the tests train each resolution on the CPU that way).

A combination that cannot work is never what `auto` picks, and asking for it is refused here, in
one line naming the setting to change, before any data is read:

| machine (TensorFlow)            | precision     | XLA (CNN; cuDNN GRU) | augmentation | strategy            |
|---------------------------------|---------------|----------------------|--------------|---------------------|
| no GPU                          | float32       | off; off             | pipeline     | default             |
| one GPU, compute capability 6.1 | float32       | on; off              | model        | default             |
| one GPU, 7.0 / 8.0 / 9.0        | mixed_float16 | on; off              | model        | default             |
| several GPUs of 8.0             | mixed_float16 | off; off             | model        | mirrored (all GPUs) |

XLA stays off on TensorFlow under `mirrored` (Keras compiles no XLA step for tf.distribute), with
deterministic ops, and on a GPU for a GRU that qualifies for cuDNN (XLA cannot compile cuDNN's
kernel, which is faster). On JAX every step is compiled by XLA; `mirrored` and several processes
are data-parallel over the devices (keras.distribution), and the GRU is a scan (JAX has no cuDNN GRU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dltrain.core.errors import UsageError

TENSOR_CORE_COMPUTE_CAPABILITY = (7, 0)  # Volta and newer run float16 matrix products on tensor cores
MIXED = "mixed_float16"
FLOAT32 = "float32"
Backend = Literal["tensorflow", "jax"]


def parse_capability(value) -> tuple[int, int] | None:
    """(major, minor) from TensorFlow's tuple or JAX's and a test's "8.0"; None when not reported."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        major, _, minor = value.partition(".")
        return (int(major), int(minor or 0)) if major.isdigit() else None
    return tuple(int(part) for part in value)[:2]


@dataclass(frozen=True)
class Gpu:
    name: str = "GPU"
    compute_capability: tuple[int, int] | None = None  # None: not reported (counted as no tensor cores)

    @property
    def tensor_cores(self) -> bool:
        return self.compute_capability is not None and self.compute_capability >= TENSOR_CORE_COMPUTE_CAPABILITY


@dataclass(frozen=True)
class Machine:
    """What one training process can use, as its backend reports it (`devices.describe_machine`) or a test states it."""

    backend: Backend = "tensorflow"
    gpus: tuple[Gpu, ...] = ()  # this process's GPUs
    cpu_devices: int = 1  # logical CPU devices (TensorFlow) or host devices (JAX) of this process
    processes: int = 1  # processes training together (--distributed, JAX)
    memory_growth: bool = False  # TensorFlow takes GPU memory as it needs it (set when the machine was described)

    @classmethod
    def with_gpus(cls, capability: str, count: int = 1, backend: Backend = "tensorflow") -> Machine:
        """A machine of `count` GPUs of compute capability `capability` ("8.0"), e.g. for a test or a what-if."""
        return cls(backend, tuple(Gpu(f"GPU {capability}", parse_capability(capability)) for _ in range(count)))

    @property
    def device_type(self) -> str:
        return "GPU" if self.gpus else "CPU"

    @property
    def local_devices(self) -> int:
        return len(self.gpus) or self.cpu_devices


@dataclass(frozen=True)
class Pinned:
    """What a resumed run keeps from its start, whatever this machine would choose: the optimizer's
    state (a loss scale or not), the model's layers (augmentation in it or not) and the batches."""

    precision: str | None = None
    augmentation: str | None = None
    global_batch: int | None = None


@dataclass(frozen=True)
class Resolution:
    backend: Backend
    device_type: str
    precision: str  # float32 or mixed_float16
    xla: bool
    augmentation: Literal["pipeline", "model"]  # where augmentation runs when the config has any
    strategy: Literal["default", "mirrored", "data-parallel"]
    replicas: int
    deterministic: bool
    cudnn_gru: bool  # a recurrent model runs cuDNN's GRU kernel
    notes: tuple[str, ...] = ()

    @property
    def mixed_precision(self) -> bool:
        return self.precision == MIXED

    def settings(self) -> list[str]:
        """`--set` values that make any machine train what this resolution chose (no `auto` left)."""
        strategy = "default" if self.strategy == "default" else "mirrored"
        return [
            f"train.mixed_precision={str(self.mixed_precision).lower()}",
            f"train.jit_compile={str(self.xla).lower()}",
            f"augment.placement={self.augmentation}",
            f"train.strategy={strategy}",
            f"train.deterministic={str(self.deterministic).lower()}",
        ]

    def describe(self) -> dict:
        return {
            "backend": self.backend,
            "device": self.device_type,
            "precision": self.precision,
            "xla": self.xla,
            "augmentation": self.augmentation,
            "strategy": self.strategy,
            "replicas": self.replicas,
            "deterministic": self.deterministic,
            "cudnn_gru": self.cudnn_gru,
        }


def resolve(machine: Machine, config, pinned: Pinned | None = None) -> Resolution:
    """Every `auto` of `config` on `machine`; a combination that cannot run there raises UsageError."""
    pinned = pinned or Pinned()
    train, notes = config.train, []
    precision = resolve_precision(machine, train.mixed_precision, pinned, notes)
    strategy, replicas = resolve_strategy(machine, train.strategy, notes)
    cudnn_candidate = bool(config.model.cudnn_recurrent()) and machine.backend == "tensorflow" and bool(machine.gpus)
    xla = resolve_xla(machine, train, strategy, cudnn_candidate, notes)
    placement = config.augment.placement
    augmentation = pinned.augmentation or (
        ("model" if machine.gpus else "pipeline") if placement == "auto" else placement
    )
    return Resolution(
        machine.backend,
        machine.device_type,
        precision,
        xla,
        augmentation,
        strategy,
        replicas,
        bool(train.deterministic),
        cudnn_candidate and not xla,
        tuple(notes),
    )


def resolve_precision(machine: Machine, requested, pinned: Pinned, notes: list[str]) -> str:
    if pinned.precision is not None:  # the optimizer state of a resumed run was saved under it
        return pinned.precision
    if requested == "auto":
        return MIXED if machine.gpus and all(gpu.tensor_cores for gpu in machine.gpus) else FLOAT32
    if requested and not machine.gpus:
        notes.append("train.mixed_precision=true on a CPU: float16 is emulated there and usually slower than float32")
    elif requested and not all(gpu.tensor_cores for gpu in machine.gpus):
        notes.append("train.mixed_precision=true on a GPU without tensor cores (compute capability below 7.0): slower")
    return MIXED if requested else FLOAT32


def resolve_strategy(machine: Machine, requested: str, notes: list[str]) -> tuple[str, int]:
    """(strategy, replicas). `mirrored`: data-parallel over every device of this host; several
    processes (JAX): data-parallel over every device of every process."""
    if machine.processes > 1:
        if machine.backend != "jax":
            raise UsageError("--distributed runs on --backend jax (Keras 3 on TensorFlow has no multi-worker training)")
        return "data-parallel", machine.processes * machine.local_devices
    wanted = requested == "mirrored" or (requested == "auto" and len(machine.gpus) > 1)
    if not wanted:
        return "default", 1
    if machine.local_devices == 1:  # a one-replica strategy only costs: on JAX, a second compilation of the step
        notes.append("train.strategy=mirrored found one device only; training runs on it unchanged")
        return "default", 1
    return ("mirrored" if machine.backend == "tensorflow" else "data-parallel"), machine.local_devices


def resolve_xla(machine: Machine, train, strategy: str, cudnn_candidate: bool, notes: list[str]) -> bool:
    requested = train.jit_compile
    if machine.backend == "jax":  # Keras on JAX compiles every step with XLA; without it, it runs eagerly
        if requested is False:
            notes.append("train.jit_compile=false on JAX runs every step eagerly: many times slower")
        return requested is not False
    if requested is True:
        refuse_xla(strategy, cudnn_candidate, train.deterministic)
        return True
    if requested is False:
        return False
    # auto, as Keras decides it but stated here: a GPU, one replica, no op determinism, no cuDNN GRU.
    return bool(machine.gpus) and strategy == "default" and not train.deterministic and not cudnn_candidate


def refuse_xla(strategy: str, cudnn_candidate: bool, deterministic: bool) -> None:
    """train.jit_compile=true where TensorFlow cannot run it, refused in one line."""
    if strategy == "mirrored":
        raise UsageError(
            "train.jit_compile=true does not run under train.strategy=mirrored on TensorFlow (Keras compiles no XLA "
            "step for tf.distribute); set train.jit_compile=auto, or train.strategy=default"
        )
    if deterministic:
        raise UsageError(
            "train.jit_compile=true with train.deterministic=true: Keras compiles no XLA step under TensorFlow's "
            "deterministic ops; set train.jit_compile=auto, or train.deterministic=false"
        )
    if cudnn_candidate:
        raise UsageError(
            "train.jit_compile=true: XLA cannot compile cuDNN's GRU kernel, which this GPU would run; set "
            "train.jit_compile=auto (cuDNN without XLA), or model.recurrent_dropout above 0 (XLA without cuDNN)"
        )


def check_batch(batch_size: int, replicas: int, samples: int, pinned_global: int | None = None) -> tuple[int, int]:
    """(per-replica batch, global batch). A global batch larger than the training set is clamped to
    it (Keras would run it as one batch anyway); a resumed run keeps the global batch it started with
    (its steps per epoch and its schedule), however many replicas share it now."""
    if samples < replicas:
        raise UsageError(
            f"{samples} training samples cannot give each of the {replicas} replicas one; train on fewer devices "
            "(train.strategy=default)"
        )
    if pinned_global is not None:
        return max(1, pinned_global // replicas), pinned_global
    per_replica = min(batch_size, samples // replicas)
    return per_replica, per_replica * replicas
