"""`dltrain train`: DATA_DIR + config -> a run directory with the best model, history and metrics.

`train_run` and `resume_run` check everything that can be refused before a run folder exists,
then hand one `TrainingSession` the data, the run and the config; the session owns the run's
provenance and is the only writer of it during training.
"""

from __future__ import annotations

import logging
import math
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dltrain.config.schema import Config
from dltrain.core.errors import DataError, DivergedError, UsageError
from dltrain.core.files import file_sha256, stale_siblings, swap_in, write_text_atomic
from dltrain.core.outputs import RUN_DIR, check_output, output_lock
from dltrain.data.datadir import DataDir
from dltrain.data.feeds import TrainingContext, passes_per_epoch, steps_per_epoch
from dltrain.runs.rundir import (
    HISTORY_FILE,
    LAST_MODEL_FILE,
    MODEL_FILE,
    STATUS_COMPLETE,
    DataRecord,
    Provenance,
    Run,
    git_commit,
    software_versions,
)
from dltrain.tasks import task_of
from dltrain.tasks.base import failures_explained
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
    if group.distributed and not task.supports_distributed:
        raise UsageError(f"--distributed does not train {task.name} data in this version")
    from dltrain.training.tracking import check_tracking_available

    check_tracking_available(config)
    if group.distributed:
        return None
    from dltrain.core.environment import keras_backend
    from dltrain.training.devices import resolve_here

    resolution = resolve_here(config, keras_backend(), pinned, machine)
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


def train_run(
    data_dir: Path | DataDir,
    run_dir: Path,
    config: Config,
    config_source: str | None,
    force: bool = False,
    extra_callbacks=(),
    group: ProcessGroup = SINGLE_PROCESS,
    machine: Machine | None = None,
) -> Provenance:
    """Train into `run_dir`. With --force over an existing run, the new run is trained in a staging
    folder beside it and takes its place only once complete: a failed or interrupted run keeps the old.
    `machine`: resolve `auto` for that machine instead of this one (what a GPU would run, forced here)."""
    run_dir = Path(run_dir)
    data = data_dir if isinstance(data_dir, DataDir) else DataDir.open(data_dir)
    check_output(run_dir, RUN_DIR, force, inputs=[data.path])
    resolution = check_training_inputs(data, config, group, machine=machine)
    with output_lock(run_dir):
        if group.distributed:
            from dltrain.training.multihost import join

            join(group)  # after every local check: a process that refuses its inputs never keeps the others waiting
        for stale in stale_siblings(run_dir):  # staging folders of killed runs: nobody else holds the lock
            shutil.rmtree(stale, ignore_errors=True)
        replacing = run_dir.is_dir() and any(run_dir.iterdir())
        target = (
            Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.partial-", dir=run_dir.parent)) if replacing else run_dir
        )
        target.mkdir(parents=True, exist_ok=True)
        run = Run.create(target, config, first_provenance(data, config, config_source))
        try:
            session = TrainingSession(
                data, run, group=group, extra_callbacks=extra_callbacks, resolution=resolution, machine=machine
            )
            result = session.train()
        except KeyboardInterrupt:
            if not replacing:
                mark_interrupted(run)
                raise
            shutil.rmtree(target, ignore_errors=True)
            logger.warning("interrupted: %s keeps its previous run; the new one was not finished", run_dir)
            raise
        except BaseException as error:
            resumable = (target / LAST_MODEL_FILE).is_file() and not isinstance(error, DivergedError)
            if not replacing and resumable:
                # Epochs were trained and checkpointed (an error while scoring, say): keep them to resume.
                mark_interrupted(run, "stopped by an error")
                raise
            # A run that failed before its first checkpoint explains nothing; do not leave it looking like a run.
            shutil.rmtree(target, ignore_errors=True)
            raise
        if replacing:
            swap_in(target, run_dir)
        return result


def first_provenance(data: DataDir, config: Config, config_source: str | None) -> Provenance:
    """What a run's provenance.json says before training starts."""
    return Provenance(
        status="running",
        command=" ".join(sys.argv),
        config_source=config_source,
        seed=config.train.seed,
        data=DataRecord(path=str(data.path.resolve()), meta=data.meta),
    )


def saved_config(run_dir: Path) -> Config:
    """A run's own config.yaml, read before Keras starts (a resumed run's backend needs it first)."""
    return Run.open(run_dir, finished=False).config


def train_as_worker(data_dir: Path | DataDir, config: Config, config_source: str | None, group: ProcessGroup) -> None:
    """A process other than 0 of a --distributed run: it trains in step with the others into a
    folder of its own (saving checkpoints reads the replicated variables with them), then drops it."""
    scratch = Path(tempfile.mkdtemp(prefix=f"dltrain-process-{group.process_id}-"))
    try:
        train_run(data_dir, scratch / "run", config, config_source, group=group)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    logger.info("process %d of %d done; process 0 wrote the run", group.process_id, group.num_processes)


def resume_run(
    run_dir: Path, data_dir: Path | None = None, extra_callbacks=(), machine: Machine | None = None
) -> Provenance:
    """Continue an interrupted run from the end of its last saved epoch, with what it started with
    pinned (precision, augmentation, global batch) whatever this machine (or `machine`) would choose."""
    run = Run.open(run_dir, finished=False)
    if run.provenance.status == STATUS_COMPLETE:
        raise UsageError(f"{run.path} is complete already; nothing to resume")
    if run.provenance.data is None:
        raise DataError(f"{run.path} stopped before training started; train it again instead")
    data = DataDir.open(Path(data_dir) if data_dir is not None else run.data_dir)
    resolution = check_training_inputs(data, run.config, pinned=pinned_settings(run.provenance), machine=machine)
    if data.meta != run.data_meta:
        raise DataError(
            f"{data.path} is not the data {run.path} was trained on (its meta.json differs); resume with the "
            "original DATA_DIR"
        )
    last = run.path / LAST_MODEL_FILE
    if not last.is_file():
        raise DataError(
            f"{run.path} stopped before its first epoch ended (no {LAST_MODEL_FILE}); train it again instead"
        )
    from dltrain.training.checkpoints import read_resume_state

    state = read_resume_state(last)
    trim_history(run.path / HISTORY_FILE, state["epochs_done"])
    logger.info("resuming %s after epoch %d of %d", run.path, state["epochs_done"], run.config.train.epochs)
    with output_lock(run.path):
        try:
            session = TrainingSession(
                data, run, resume_state=state, extra_callbacks=extra_callbacks, resolution=resolution, machine=machine
            )
            return session.train()
        except KeyboardInterrupt:
            mark_interrupted(run)
            raise
        except Exception:
            mark_interrupted(run, "stopped by an error")
            raise


def trim_history(path: Path, epochs_done: int) -> None:
    """A run killed after the CSV row of an epoch but before its checkpoint has one row too many;
    that epoch is trained again, so its row goes."""
    if path.is_file():
        history = pd.read_csv(path)
        if len(history) > epochs_done:
            write_text_atomic(path, history.iloc[:epochs_done].to_csv(index=False))


def mark_interrupted(run: Run, why: str = "interrupted") -> None:
    if (run.path / "provenance.json").is_file():
        run.provenance.status = "interrupted"
        run.save_provenance()
    resumable = (run.path / LAST_MODEL_FILE).is_file()
    logger.warning(
        "%s: %s is incomplete%s",
        why,
        run.path,
        f"; continue it with: dltrain train --resume {run.path}" if resumable else "",
    )


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


@dataclass
class TrainingSession:
    """One training (or its continuation) of `run.config` on `data` into the run folder."""

    data: DataDir
    run: Run
    group: ProcessGroup = SINGLE_PROCESS
    resume_state: dict | None = None
    extra_callbacks: Sequence = ()
    resolution: Resolution | None = None  # what `auto` became here (None: resolved when training starts)
    machine: Machine | None = None  # the machine it resolves for (None: this one, as its backend describes it)
    tracker: object = field(default=None, init=False)
    scratch_files: list = field(default_factory=list, init=False)  # the feeds' files, removed once complete

    @property
    def config(self) -> Config:
        return self.run.config

    @property
    def first_epoch(self) -> int:
        return self.resume_state["epochs_done"] if self.resume_state else 0

    def train(self) -> Provenance:
        from dltrain.core.console import import_tensorflow_quietly

        import_tensorflow_quietly()
        import keras

        from dltrain.training.devices import configure_devices, describe_machine, device_scope, resolve_here

        keras.utils.set_random_seed(self.config.train.seed)
        backend = keras.backend.backend()
        pinned = pinned_settings(self.run.provenance) if self.resume_state else None
        self.resolution = self.resolution or resolve_here(self.config, backend, pinned, self.machine)
        setup = configure_devices(self.resolution, self.machine or describe_machine(backend))
        device = setup.device()
        names, replicas = ", ".join(device["names"]), setup.resolution.replicas
        logger.info("training on %s (%s), %d replica(s)", device["type"], names, replicas)
        try:
            with device_scope(setup), failures_explained(task_of(self.data.meta), self.data):
                model, callbacks, watch = self._fit(setup)
            if self.group.distributed:
                from dltrain.training.multihost import check_same_weights, leave

                self.run.provenance.weights_sha256 = check_same_weights(model, self.group)
                leave()  # scoring below loads model.keras on this process alone
            with failures_explained(task_of(self.data.meta), self.data):
                self._finish(callbacks, watch)
        except BaseException as error:
            if self.tracker:
                self.tracker.stop(interrupted=isinstance(error, KeyboardInterrupt))
            raise
        finally:  # a disk cache is no result; a resumed run decodes it again
            for path in self.scratch_files:
                path.unlink(missing_ok=True)
        if self.tracker:
            self.tracker.finish(self.run.path, self.run.provenance.metrics, self.run.provenance.epochs_run or 0)
        return self.run.provenance

    def _fit(self, setup):
        """Fit every phase left (one, or a frozen backbone then an unfrozen one), on the same feeds and callbacks."""
        from dltrain.training.building import build_callbacks, carry_over, compile_for

        config = self.config
        model, phases, feeds = self._build(setup)
        callbacks, watch = build_callbacks(config, self.run.path, feeds.steps_per_epoch, self.resume_state)
        for index, phase in enumerate(phases):
            if index:
                if watch.diverged or model.stop_training:
                    break
                logger.info(
                    "epoch %d: the backbone is unfrozen (optimizer.learning_rate %g)",
                    phase.first + 1,
                    config.optimizer.learning_rate,
                )
                compile_for(model, self.data, config, feeds.steps_per_epoch, phase, setup.resolution.xla)
                carry_over(callbacks, phase)
            model.fit(
                feeds.train_epochs(phase.first, phase.end),
                validation_data=feeds.val,
                epochs=phase.end,
                initial_epoch=phase.first,
                steps_per_epoch=feeds.steps_per_epoch,
                callbacks=callbacks + ([self.tracker.callback()] if self.tracker else []) + list(self.extra_callbacks),
                class_weight=feeds.class_weight,
                verbose=0,
                shuffle=False,
            )
        return model, callbacks, watch

    def _build(self, setup):
        """The compiled model (first: its refusals come before any image is decoded), the phases left to
        train and the feeds; a resumed run's state restored into the model."""
        from dltrain.training.building import build_model, training_phases
        from dltrain.training.devices import distinct_replica_draws

        config, task, resolution = self.config, task_of(self.data.meta), setup.resolution
        samples = self.data.meta.split_size("train")
        global_batch = self._global_batch(resolution.replicas, samples)
        shard = (self.group.process_id, self.group.num_processes) if self.group.distributed else None
        passes = epoch_passes(samples, global_batch, config.train.min_steps_per_epoch)
        split = self._even_split(resolution.replicas)
        steps = steps_per_epoch(passes * samples, global_batch, shard is not None, split)
        stopped = bool((self.resume_state or {}).get("stopped"))  # early stopping had ended it: only scoring is left
        phases = [] if stopped else training_phases(config, self.first_epoch)
        last_phase = training_phases(config, max(self.first_epoch - 1, 0))[0]  # holding the last epoch trained
        built = without_weights_file(config) if self.resume_state else config
        model = build_model(self.data, built, steps, resolution, phases[0] if phases else last_phase)
        placement = (resolution.augmentation, passes, split)
        context = TrainingContext(self.first_epoch, shard, self.run.path, *placement)
        feeds = task.training_feeds(self.data, config, global_batch, context)
        self.scratch_files = feeds.scratch_files
        notes = {**feeds.notes, "passes_per_epoch": passes, "steps_per_epoch": feeds.steps_per_epoch}
        notes.update({} if self.resume_state else weights_notes(config.model))
        self.run.provenance.global_batch = global_batch
        self._start_provenance(model, setup, notes, not phases or phases[0].first == phases[0].start)
        distinct_replica_draws(model, setup)  # after any restore: each replica its own dropout and augmentation
        return model, phases, feeds

    def _even_split(self, replicas: int) -> int:
        """What every batch must divide evenly by: the replicas, and on a resumed run also those it
        started with, so that its epochs keep the draws (and steps) they had when it can."""
        started = self.run.provenance.replicas if self.resume_state else 1
        return math.lcm(replicas, started)

    def _global_batch(self, replicas: int, samples: int) -> int:
        """batch_size x replicas (checked and clamped before the run began), or a resumed run's own."""
        pinned = self.run.provenance.global_batch if self.resume_state else None
        global_batch = pinned or self.config.train.batch_size * replicas
        if global_batch > samples:  # a --distributed run learns its replicas only once joined
            raise UsageError(
                f"the global batch ({self.config.train.batch_size} x {replicas} replicas = {global_batch}) is larger "
                f"than the {samples} training samples; lower train.batch_size"
            )
        return global_batch

    def _start_provenance(self, model, setup, input_notes: dict, phase_begins: bool) -> None:
        """Record what actually runs (not what the config asked for) before the first epoch; a resumed
        run's state restored first (its optimizer's too, unless a new phase begins with a fresh one)."""
        provenance, config = self.run.provenance, self.config
        if self.resume_state:
            from dltrain.training.checkpoints import restore_training_state

            restore_training_state(
                model,
                self.run.path / LAST_MODEL_FILE,
                self.resume_state,
                config.schedule.name in ("constant", "plateau"),
                restore_optimizer=not phase_begins,
            )
            provenance.status = "running"
            provenance.resumed_after_epochs = [*provenance.resumed_after_epochs, self.first_epoch]
        else:
            provenance = self.run.provenance = Provenance.model_validate(
                {**provenance.model_dump(), **self._what_runs(model, setup)}
            )
        provenance.input = {**(provenance.input or {}), **input_notes} or None  # a resume keeps the first notes
        if self.group.distributed:
            provenance.processes = self.group.describe()
        if config.train.tracking == "mlflow" and self.group.is_chief:
            from dltrain.training.tracking import MlflowTracker

            self.tracker = MlflowTracker(config, self.run.path, provenance.tracking)
            provenance.tracking = self.tracker.record()
        self.run.save_provenance()
        logger.info(
            "model %s: %s parameters; precision %s, XLA %s, augmentation %s",
            config.model.name,
            f"{model.count_params():,}",
            provenance.precision,
            provenance.xla,
            provenance.augmentation,
        )

    def _what_runs(self, model, setup) -> dict:
        """Provenance entries of what this training actually runs: versions, device, precision, XLA as
        Keras compiled it, determinism in force, the GRU kernel, where augmentation runs."""
        import keras

        from dltrain.training.devices import jax_determinism_in_force

        resolution, config = setup.resolution, self.config
        recurrent = config.model.cudnn_recurrent() is not None
        deterministic = resolution.deterministic and (resolution.backend != "jax" or jax_determinism_in_force())
        if recurrent and resolution.device_type == "GPU" and not resolution.cudnn_gru:
            logger.warning("the GRU runs without cuDNN's kernel here (XLA, JAX or recurrent dropout): expect it slower")
        return {
            "versions": software_versions(),
            "git_commit": git_commit(),
            "device": setup.device(),
            "backend": resolution.backend,
            "strategy": resolution.strategy,
            "replicas": resolution.replicas,
            "mixed_precision": resolution.mixed_precision,
            "memory_growth": setup.machine.memory_growth,
            "precision": keras.config.dtype_policy().name,
            "xla": bool(model.jit_compile),
            "augmentation": resolution.augmentation,
            "deterministic_ops": deterministic,
            "cudnn_gru": recurrent and resolution.cudnn_gru,
            "parameters": int(model.count_params()),
        }

    def _finish(self, callbacks, watch) -> None:
        """Score the kept model on validation and test, as `evaluate` will load it, and close the run."""

        from dltrain.runs.scoring import headline, score_split
        from dltrain.training.callbacks import weights_are_finite
        from dltrain.training.checkpoints import LastCheckpoint

        config, provenance, run_dir = self.config, self.run.provenance, self.run.path
        epochs_run = len(pd.read_csv(run_dir / HISTORY_FILE))
        seconds = next(callback for callback in callbacks if isinstance(callback, LastCheckpoint)).train_seconds()
        logger.info("trained %d epochs in %.1f s", epochs_run, seconds)
        kept_epoch = self._kept_epoch(callbacks)
        self._check_divergence(watch, kept_epoch)
        if not config.early_stopping.restore_best:
            shutil.copyfile(run_dir / LAST_MODEL_FILE, run_dir / MODEL_FILE)
        kept = self.run.load_model()  # as evaluate and predict will load it
        if not weights_are_finite(kept):
            raise DataError(
                f"{run_dir / MODEL_FILE} holds weights that are not finite numbers: the run is not a result"
            )
        task = task_of(self.data.meta)
        provenance.thresholds = task.tune(kept, self.data, config).get("thresholds")
        provenance.best_epoch, provenance.epochs_run = kept_epoch, epochs_run  # the learning curves mark them
        # Validation only: it steered the run. The test split is scored by an explicit `evaluate --split test`.
        metrics = {"val": score_split(kept, self.data, "val", self.run)}
        provenance.status = STATUS_COMPLETE
        provenance.train_seconds = round(seconds, 1)
        provenance.metrics = {split: headline(values, task.headline) for split, values in metrics.items()}
        self.run.save_provenance()

    def _kept_epoch(self, callbacks) -> int | None:
        """The epoch (1-based) whose model the run keeps: the best checkpoint's, or the last one saved."""
        from dltrain.training.checkpoints import BestModelCheckpoint, LastCheckpoint

        if self.config.early_stopping.restore_best:
            best = next(callback for callback in callbacks if isinstance(callback, BestModelCheckpoint))
            return None if best.best_epoch is None else best.best_epoch + 1
        return next(callback for callback in callbacks if isinstance(callback, LastCheckpoint)).epochs_saved

    def _check_divergence(self, watch, kept_epoch: int | None) -> None:
        if watch.diverged_at is None:
            return
        config = self.config
        from dltrain.training.callbacks import EXPLOSION_FACTOR

        epoch, where = watch.diverged_at["epoch"], watch.diverged_at["where"]
        what = f"the loss became NaN, infinite or over {EXPLOSION_FACTOR:.0e} x its start in epoch {epoch}, {where}"
        if kept_epoch is None:
            raise DivergedError(
                f"training diverged: {what}, before any epoch could be kept; lower optimizer.learning_rate "
                f"(now {config.optimizer.learning_rate:g}) or set optimizer.clipnorm"
            )
        kind = "best" if config.early_stopping.restore_best else "last"
        logger.warning(
            "training diverged: %s, and stopped; %s is epoch %d, the %s one before it",
            what,
            MODEL_FILE,
            kept_epoch,
            kind,
        )
        self.run.provenance.diverged_at = watch.diverged_at
