"""Everything `train` refuses or settles before a run folder exists (the splits, the task's rules,
what `auto` becomes here, the batch against the training set), and the settings a training derives
from its config and data: passes per epoch, what a resumed run keeps, a weights file's record."""

from __future__ import annotations

import logging
from pathlib import Path

from dltrain.config.schema import Config
from dltrain.core.errors import DataError, UsageError
from dltrain.core.files import file_sha256
from dltrain.data.datadir import DataDir
from dltrain.data.feeds import passes_per_epoch
from dltrain.runs.provenance import Provenance
from dltrain.tasks import task_of
from dltrain.training.multihost import SINGLE_PROCESS, ProcessGroup
from dltrain.training.resolution import Machine, Pinned, Resolution, check_batch

logger = logging.getLogger("dltrain")


def check_training_inputs(
    data: DataDir,
    config: Config,
    group: ProcessGroup = SINGLE_PROCESS,
    pinned: Pinned | None = None,
    machine: Machine | None = None,
) -> Resolution | None:
    """Everything that can be refused before a run folder exists, what this machine makes of the
    config's `auto` settings included; returns that resolution (None for a --distributed process: it
    resolves once joined, since JAX must not start before). A global batch larger than the training
    set is clamped to it (Keras would run it as one batch anyway), logged, and recorded in config.yaml."""
    task = task_of(data.meta)
    for split in ("train", "val"):
        if not data.has_split(split):
            raise DataError(
                f"{data.path} has no {split} split; re-run 'dltrain prepare' (with --val-fraction > 0 for validation)"
            )
    task.check_config(config, data)
    final, classes = config.train.sampling_final_weights, data.meta.classes
    if final is not None and len(final) != len(classes):
        raise UsageError(
            f"train.sampling_final_weights has {len(final)} weights; {data.path} has {len(classes)} classes "
            f"({', '.join(classes)}): give one per class"
        )
    if group.distributed and not task.supports_distributed:
        raise UsageError(f"--distributed does not train {task.name} data in this version")
    from dltrain.training.tracking import check_tracking_available

    check_tracking_available(config)
    if group.distributed:
        return None
    from dltrain.core.environment import keras_backend
    from dltrain.training.devices import resolve_here

    resolution = resolve_here(config, keras_backend(), task, pinned, machine)
    samples = data.meta.split_size("train")
    pinned_global = (pinned or Pinned()).global_batch
    per_replica, _ = check_batch(config.train.batch_size, resolution.replicas, samples, pinned_global)
    if per_replica != config.train.batch_size and pinned_global is None:
        logger.info(
            "train.batch_size %d x %d replica(s) is larger than the %d training samples: using %d",
            config.train.batch_size,
            resolution.replicas,
            samples,
            per_replica,
        )
        config.train.batch_size = per_replica
    return resolution


def pinned_settings(provenance: Provenance) -> Pinned:
    """What a resumed run keeps from its start (training.resolution.Pinned). Runs from before these
    were recorded: the augmentation where `auto` put it on the device they started on."""
    placement = provenance.augmentation
    if placement is None and provenance.device:
        placement = "pipeline" if provenance.device.get("type") == "CPU" else "model"
    return Pinned(provenance.precision, placement, provenance.global_batch)


def without_weights_file(config: Config) -> Config:
    """A resumed run's weights come from last.keras: its starting weights file is not read again (it may be
    gone). What the file decided stays: the backbone's batch-norm mode that `auto` chose for it."""
    if getattr(config.model, "weights", None) is None:
        return config
    from dltrain.networks.backbone import backbone_batch_norm

    kept = {"weights": None, "backbone_batch_norm": backbone_batch_norm(config.model)}
    return config.model_copy(update={"model": config.model.model_copy(update=kept)})


MAX_PASSES = 1000  # each pass is one shuffle in the input graph: beyond this, a setting mistake, not a plan


def epoch_passes(samples: int, global_batch: int, min_steps: int) -> int:
    """Passes over the training set per epoch (train.min_steps_per_epoch), said once when more than one."""
    passes = passes_per_epoch(samples, global_batch, min_steps)
    if passes > MAX_PASSES:
        raise UsageError(
            f"train.min_steps_per_epoch={min_steps} needs {passes} passes over the {samples} training samples in "
            f"every epoch (at most {MAX_PASSES}); lower it, or train.batch_size"
        )
    if passes > 1:
        logger.info(
            "an epoch is %d passes over the %d training samples, %d steps of %d (train.min_steps_per_epoch=%d)",
            passes,
            samples,
            -(-passes * samples // global_batch),
            global_batch,
            min_steps,
        )
    return passes


def weights_notes(model_config) -> dict:
    """A model started from a weights file (a pretrained backbone): which file, and its sha256, for provenance."""
    weights = getattr(model_config, "weights", None)
    return {"weights": str(Path(weights).resolve()), "weights_sha256": file_sha256(Path(weights))} if weights else {}
