"""`dltrain train`: a DATA_DIR and a config -> a RUN_DIR."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from dltrain.cli.common import examples, report_run, user_errors
from dltrain.config.presets import preset_names
from dltrain.core.errors import UsageError

TRAIN_EXAMPLES = examples(
    "dltrain train data/hapt --out models/har-gru",
    "dltrain train data/hapt --out models/har-sgd --set optimizer.name=sgd",
    "dltrain train data/retina-demo --out models/retina-cnn",
)

REFIT_EXAMPLES = examples(
    "dltrain refit models/har-gru --out models/har-gru-final",
    "dltrain refit models/har-gru --epochs 12 --out models/har-gru-12",
)

DataDirArgument = Annotated[
    Path | None,
    typer.Argument(
        metavar="DATA_DIR", help="Prepared DATA_DIR (from 'dltrain prepare'); with --resume, the run's own by default."
    ),
]
OutOption = Annotated[
    Path | None, typer.Option("--out", "-o", help="RUN_DIR to write (default: models/<data>-<config>-<time>).")
]
ConfigOption = Annotated[
    str | None,
    typer.Option(
        "--config", "-c", help=f"Preset ({', '.join(preset_names())}) or YAML file (default: the task's preset)."
    ),
]
OverridesOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override one config key, e.g. --set train.epochs=10 (repeatable)."),
]
PrintConfigOption = Annotated[
    bool, typer.Option("--print-config", help="Print the resolved configuration as YAML and exit.")
]
ResumeOption = Annotated[
    Path | None,
    typer.Option(
        "--resume",
        metavar="RUN_DIR",
        help="Continue an interrupted RUN_DIR from its last epoch, with its own config, optimizer state and counters "
        "(dltrain train --resume models/har-gru).",
    ),
]
ForceOption = Annotated[bool, typer.Option(help="Replace an existing non-empty RUN_DIR.")]
BackendOption = Annotated[
    Literal["tensorflow", "jax"],
    typer.Option(
        envvar="KERAS_BACKEND",
        help="Keras backend: tensorflow, or jax (the jax extra; needed for --distributed).",
        rich_help_panel="Backend and several hosts",
    ),
]
DistributedOption = Annotated[
    bool,
    typer.Option(
        "--distributed",
        help="One of several processes (hosts) training together, data-parallel (--backend jax).",
        rich_help_panel="Backend and several hosts",
    ),
]
CoordinatorOption = Annotated[
    str | None,
    typer.Option(
        envvar="DLTRAIN_COORDINATOR",
        help="HOST:PORT of process 0, the same for every process.",
        rich_help_panel="Backend and several hosts",
    ),
]
NumProcessesOption = Annotated[
    int | None,
    typer.Option(
        envvar="DLTRAIN_NUM_PROCESSES",
        help="How many processes train together.",
        rich_help_panel="Backend and several hosts",
    ),
]
ProcessIdOption = Annotated[
    int | None,
    typer.Option(
        envvar="DLTRAIN_PROCESS_ID",
        help="This process's number, 0 to N-1; process 0 writes RUN_DIR.",
        rich_help_panel="Backend and several hosts",
    ),
]


@user_errors
def train(
    data_dir: DataDirArgument = None,
    out: OutOption = None,
    config: ConfigOption = None,
    overrides: OverridesOption = None,
    print_config: PrintConfigOption = False,
    resume: ResumeOption = None,
    force: ForceOption = False,
    backend: BackendOption = "tensorflow",
    distributed: DistributedOption = False,
    coordinator: CoordinatorOption = None,
    num_processes: NumProcessesOption = None,
    process_id: ProcessIdOption = None,
) -> None:
    """Train a model on DATA_DIR; the best and last model, history and metrics go to RUN_DIR."""
    from dltrain.training.launch import TrainRequest, launch_training

    if print_config:
        if resume is not None:
            raise UsageError("--print-config shows a new run's config; a run's own is its config.yaml")
        print_resolved_config(data_dir, config, overrides or [], backend)
        return
    request = TrainRequest(
        data_dir,
        out,
        config,
        overrides or [],
        resume,
        force,
        backend,
        distributed,
        coordinator,
        num_processes,
        process_id,
    )
    outcome = launch_training(request)
    if outcome.run_dir is not None:
        report_run(outcome.run_dir)


def print_resolved_config(data_dir: Path | None, config: str | None, overrides: list[str], backend: str) -> None:
    """The config as YAML, then what its `auto` settings become on this machine, as YAML comments
    (the output stays a config file that `--config` takes)."""
    from dltrain.tasks import task_of
    from dltrain.training.devices import resolution_lines, resolve_here
    from dltrain.training.launch import resolve_config
    from dltrain.training.multihost import select_backend

    data, _, resolved = resolve_config(data_dir, config, overrides)
    select_backend(backend, resolved.train.deterministic)
    lines = resolution_lines(resolved, resolve_here(resolved, backend, task_of(data.meta)))
    typer.echo(resolved.to_yaml() + "# on this machine:\n" + "".join(f"#   {line}\n" for line in lines), nl=False)


RefitRunArgument = Annotated[
    Path, typer.Argument(metavar="RUN_DIR", help="A complete run whose config and kept epoch the final model takes.")
]
RefitOutOption = Annotated[Path, typer.Option("--out", "-o", help="RUN_DIR to write the final model to.")]
EpochsOption = Annotated[
    int | None,
    typer.Option(
        min=1, max=100_000, help="Epochs to train (default: the epoch RUN_DIR kept), e.g. what sweep --folds chose."
    ),
]
RefitDataOption = Annotated[
    Path | None, typer.Option("--data", help="The run's DATA_DIR, where it has moved (default: where it trained).")
]


@user_errors
def refit(
    run_dir: RefitRunArgument,
    out: RefitOutOption,
    epochs: EpochsOption = None,
    data: RefitDataOption = None,
    force: ForceOption = False,
    backend: BackendOption = "tensorflow",
) -> None:
    """Train a final model on train and val together, for the epochs RUN_DIR kept, choosing nothing on val.

    RUN_DIR's config, no early stopping, the last epoch kept, a plateau schedule's rates replayed; judge it on test.
    """
    from dltrain.runs.rundir import Run
    from dltrain.training.multihost import select_backend

    select_backend(backend, Run.open(run_dir).config.train.deterministic)  # before anything imports Keras
    from dltrain.experiments.refit import refit as refit_run

    refit_run(run_dir, out, epochs, data, force)
    report_run(out)
