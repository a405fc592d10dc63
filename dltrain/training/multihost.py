"""Choosing the Keras backend, and training over several processes (hosts) on the JAX backend.

Keras 3 on TensorFlow does not run `MultiWorkerMirroredStrategy`, so several hosts means Keras 3 on
JAX: `jax.distributed` joins the processes, `keras.distribution.DataParallel` replicates the model
on every device of every process and averages the gradients. Every process runs the same dltrain
training with the same seed and feeds its own share of each global batch; only process 0 writes
RUN_DIR, the others train into a temporary folder that is removed at the end (they must still save
their checkpoints: saving reads the replicated variables in step with the other processes).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from dataclasses import dataclass

from dltrain.core.errors import UsageError
from dltrain.core.extras import require_extra

logger = logging.getLogger("dltrain")
BACKENDS = ("tensorflow", "jax")
JOIN_TIMEOUT_SECONDS = 120  # how long a process waits for the others to join before giving up


@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in a training: one process, or process `process_id` of `num_processes`."""

    num_processes: int = 1
    process_id: int = 0
    coordinator: str | None = None

    @property
    def is_chief(self) -> bool:
        return self.process_id == 0

    @property
    def distributed(self) -> bool:
        return self.num_processes > 1

    def describe(self) -> dict:
        return {"processes": self.num_processes, "coordinator": self.coordinator}


SINGLE_PROCESS = ProcessGroup()


def select_backend(backend: str, deterministic: bool = False) -> None:
    """Must run before Keras is imported: Keras reads KERAS_BACKEND once, at import (and JAX its
    deterministic flag once, when it starts)."""
    if backend not in BACKENDS:
        raise UsageError(f"--backend {backend}: choose one of {', '.join(BACKENDS)}")
    if backend == "jax":
        require_extra("jax", ("jax",), "--backend jax")
        from dltrain.training.devices import request_jax_determinism

        request_jax_determinism(deterministic)
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != backend:
            raise UsageError(
                f"--backend {backend}: Keras was already started on {keras.backend.backend()} in this process"
            )
        return
    os.environ["KERAS_BACKEND"] = backend


def check_process_options(coordinator: str | None, num_processes: int | None, process_id: int | None) -> ProcessGroup:
    """The three launch values, each from its option or the environment a launcher sets; all or none."""
    given = {"--coordinator": coordinator, "--num-processes": num_processes, "--process-id": process_id}
    missing = [name for name, value in given.items() if value is None]
    if missing:
        raise UsageError(
            f"--distributed needs {', '.join(missing)} (or DLTRAIN_COORDINATOR, DLTRAIN_NUM_PROCESSES, "
            "DLTRAIN_PROCESS_ID)"
        )
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--coordinator {coordinator}: give HOST:PORT of process 0, e.g. 10.0.0.1:29500")
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise UsageError(
            f"--process-id {process_id} with --num-processes {num_processes}: ids run from 0 to num_processes - 1"
        )
    return ProcessGroup(num_processes, process_id, coordinator)


def join(group: ProcessGroup) -> None:
    """Join the other processes and make every later model data-parallel over all their devices."""
    import jax

    # CPU processes talk over TCP (gloo); GPU processes use NCCL whatever this says. Asking JAX for
    # its platform first would start it, and initialize() must come before JAX starts.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    logger.info(
        "process %d of %d: joining the coordinator at %s", group.process_id, group.num_processes, group.coordinator
    )
    try:
        jax.distributed.initialize(
            group.coordinator, group.num_processes, group.process_id, initialization_timeout=JOIN_TIMEOUT_SECONDS
        )
    except Exception as error:  # XLA raises its own status errors for a coordinator that never answers
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise UsageError(f"could not join the other processes at {group.coordinator} ({reason})") from None
    import keras

    # Each process builds its own share of every batch (dltrain.training.feeds), so no automatic sharding.
    keras.distribution.set_distribution(keras.distribution.DataParallel(auto_shard_dataset=False))
    logger.info("data-parallel over %d devices in %d processes", len(jax.devices()), jax.process_count())


def leave() -> None:
    """Models built after training (scoring, reports) live on this process only."""
    import keras

    keras.distribution.set_distribution(None)


def weights_digest(model) -> str:
    return hashlib.sha256(b"".join(weight.tobytes() for weight in model.get_weights())).hexdigest()


def check_same_weights(model, group: ProcessGroup) -> str:
    """Every process must end with the same weights; a replica that drifted would be a silent bug."""
    import numpy as np
    from jax.experimental import multihost_utils

    digest = weights_digest(model)
    multihost_utils.assert_equal(
        np.frombuffer(bytes.fromhex(digest), dtype=np.uint8),
        f"process {group.process_id}: weights differ between processes",
    )
    logger.info(
        "process %d of %d: final weights sha256 %s, the same on every process",
        group.process_id,
        group.num_processes,
        digest[:16],
    )
    return digest
