"""What `dltrain train` does with its options: the backend and process group chosen before Keras
starts, the config resolved against the data's task, then a new run, a resumed one, or this
process's part of a run over several processes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dltrain.core.errors import UsageError
from dltrain.training.multihost import SINGLE_PROCESS, ProcessGroup, check_process_options, select_backend


@dataclass
class TrainRequest:
    data_dir: Path | None = None
    out: Path | None = None
    config: str | None = None  # a preset name or a YAML file; None: the data's task preset
    overrides: list[str] = field(default_factory=list)
    resume: Path | None = None
    force: bool = False
    backend: str = "tensorflow"
    distributed: bool = False
    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None


@dataclass
class TrainOutcome:
    run_dir: Path | None  # None on a process other than 0 of a distributed run
    provenance: object | None


def process_group(request: TrainRequest) -> ProcessGroup:
    """This process's place in the training, checked before any process joins another."""
    if not request.distributed:
        return SINGLE_PROCESS
    if request.backend != "jax":
        raise UsageError("--distributed runs on --backend jax (Keras 3 on TensorFlow has no multi-worker training)")
    if request.resume is not None:
        raise UsageError("--resume continues single-process runs only; train a --distributed run again")
    return check_process_options(request.coordinator, request.num_processes, request.process_id)


def resolve_config(data_dir: Path | None, config: str | None, overrides: list[str]):
    """The DATA_DIR, and the config a training of it would use: `config`, or the task's preset,
    with the overrides; returns (data, config name, config)."""
    from dltrain.config.loading import load_config
    from dltrain.data.datadir import DataDir
    from dltrain.tasks import task_of

    if data_dir is None:
        raise UsageError("missing DATA_DIR (a folder written by 'dltrain prepare'), or --resume RUN_DIR")
    data = DataDir.open(data_dir)
    config_name = config or task_of(data.meta).preset
    return data, config_name, load_config(config_name, overrides)


def default_run_dir(data_dir: Path, config_name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("models") / f"{Path(data_dir).name}-{Path(config_name).stem}-{stamp}"


def launch_training(request: TrainRequest) -> TrainOutcome:
    """The config is read first (nothing of it imports Keras), then the backend is chosen with what it
    must know before it starts (JAX's deterministic flag), then the training runs."""
    group = process_group(request)
    if request.resume is not None:
        if request.config or request.overrides or request.out or request.force:
            raise UsageError(
                "--resume continues with the run's own config.yaml and folder; --config, --set, --out and --force do "
                "not apply"
            )
        from dltrain.training.session import resume_run, saved_config  # nothing it imports starts Keras

        select_backend(request.backend, saved_config(request.resume).train.deterministic)

        return TrainOutcome(request.resume, resume_run(request.resume, request.data_dir))
    data, config_name, config = resolve_config(request.data_dir, request.config, request.overrides)
    select_backend(request.backend, config.train.deterministic)  # before anything imports Keras
    from dltrain.training.session import train_as_worker, train_run

    if not group.is_chief:
        train_as_worker(data, config, config_name, group)
        return TrainOutcome(None, None)
    run_dir = request.out or default_run_dir(request.data_dir, config_name)
    return TrainOutcome(run_dir, train_run(data, run_dir, config, config_name, force=request.force, group=group))
