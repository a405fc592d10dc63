"""`dltrain train`: DATA_DIR + config -> a run directory with the best model, history and metrics.

`train_run` and `resume_run` check everything that can be refused before a run folder exists,
then hand one `TrainingSession` the data, the run and the config; the session owns the run's
provenance and is the only writer of it during training.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dltrain.config.schema import Config
from dltrain.core.errors import DataError, DivergedError, UsageError, failures_explained
from dltrain.core.outputs import RUN_DIR, check_output, output_lock
from dltrain.data.datadir import DataDir
from dltrain.data.feeds import TrainingContext, steps_per_epoch
from dltrain.runs.lifecycle import interrupted_on_failure, staged_run, trim_history
from dltrain.runs.provenance import Provenance, RefitRecord, first_provenance, git_commit, software_versions
from dltrain.runs.rundir import LAST_MODEL_FILE, MODEL_FILE, STATUS_COMPLETE, Run
from dltrain.tasks import task_of
from dltrain.training.multihost import SINGLE_PROCESS, ProcessGroup
from dltrain.training.preflight import (
    check_training_inputs,
    epoch_passes,
    pinned_settings,
    weights_notes,
    without_weights_file,
)
from dltrain.training.resolution import Machine, Resolution

logger = logging.getLogger("dltrain")


def train_run(
    data_dir: Path | DataDir,
    run_dir: Path,
    config: Config,
    config_source: str | None,
    force: bool = False,
    extra_callbacks=(),
    group: ProcessGroup = SINGLE_PROCESS,
    machine: Machine | None = None,
    refit_of: RefitRecord | None = None,
) -> Provenance:
    """Train into `run_dir`. With --force over an existing run, the new run is trained in a staging
    folder beside it and takes its place only once complete: a failed or interrupted run keeps the old.
    `machine`: resolve `auto` for that machine instead of this one (what a GPU would run, forced here).
    `refit_of`: the run whose epochs this final model trains (`dltrain refit`), for its provenance."""
    run_dir = Path(run_dir)
    data = data_dir if isinstance(data_dir, DataDir) else DataDir.open(data_dir)
    check_output(run_dir, RUN_DIR, force, inputs=[data.path])
    training_data = data.for_training(config.train.fit_on)
    resolution = check_training_inputs(training_data, config, group, machine=machine)
    with output_lock(run_dir):
        if group.distributed:
            from dltrain.training.multihost import join

            join(group)  # after every local check: a process that refuses its inputs never keeps the others waiting
        provenance = first_provenance(data.path, data.meta, config, config_source, refit_of)
        with staged_run(run_dir, config, provenance) as run:
            session = TrainingSession(
                training_data, run, group=group, extra_callbacks=extra_callbacks, resolution=resolution, machine=machine
            )
            return session.train()


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
    run.check_trained_on(data.meta, data.path, "resume")
    data = data.for_training(run.config.train.fit_on)
    resolution = check_training_inputs(data, run.config, pinned=pinned_settings(run.provenance), machine=machine)
    last = run.path / LAST_MODEL_FILE
    if not last.is_file():
        raise DataError(
            f"{run.path} stopped before its first epoch ended (no {LAST_MODEL_FILE}); train it again instead"
        )
    from dltrain.training.checkpoints import read_resume_state

    state = read_resume_state(last)
    trim_history(run, state["epochs_done"])
    logger.info("resuming %s after epoch %d of %d", run.path, state["epochs_done"], run.config.train.epochs)
    with output_lock(run.path), interrupted_on_failure(run):
        session = TrainingSession(
            data, run, resume_state=state, extra_callbacks=extra_callbacks, resolution=resolution, machine=machine
        )
        return session.train()


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
    def task(self):
        return task_of(self.data.meta)

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
        self.resolution = self.resolution or resolve_here(self.config, backend, self.task, pinned, self.machine)
        setup = configure_devices(self.resolution, self.machine or describe_machine(backend))
        device = setup.device()
        names, replicas = ", ".join(device["names"]), setup.resolution.replicas
        logger.info("training on %s (%s), %d replica(s)", device["type"], names, replicas)
        try:
            with device_scope(setup), failures_explained():
                model, callbacks, watch = self._fit(setup)
            if self.group.distributed:
                from dltrain.training.multihost import check_same_weights, leave

                self.run.provenance.weights_sha256 = check_same_weights(model, self.group)
                leave()  # scoring below loads model.keras on this process alone
            with failures_explained():
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
        from dltrain.training.building import build_before_fit, build_callbacks, carry_over, compile_for

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
            batches = feeds.train_epochs(phase.first, phase.end)
            build_before_fit(model, batches)
            model.fit(
                batches,
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

        config, task, resolution = self.config, self.task, setup.resolution
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

        from dltrain.runs.evaluation import headline, score_split
        from dltrain.training.callbacks import weights_are_finite
        from dltrain.training.checkpoints import LastCheckpoint

        config, provenance, run_dir = self.config, self.run.provenance, self.run.path
        epochs_run = len(self.run.history())
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
        task = self.task
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
