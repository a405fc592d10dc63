"""Commands over several runs: `compare`, `ensemble`, `sweep`, `reproduce`, `lab`."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Literal

import typer

from dltrain.cli.common import REGRESSION_EXIT_CODE, examples, print_error, report_run, table_width, user_errors
from dltrain.core.console import stderr_console
from dltrain.experiments.lab.budgets import BUDGETS

COMPARE_EXAMPLES = examples("dltrain compare models/har-gru models/har-sgd --out models/compared")
ENSEMBLE_EXAMPLES = examples("dltrain ensemble models/har-gru models/har-sgd --out models/har-ensemble")
SWEEP_EXAMPLES = examples("dltrain sweep data/hapt --grid train.seed=1,2,3 --out models/seeds")
REPRODUCE_EXAMPLES = examples(
    "dltrain reproduce har-gru --budget ci --seeds 1,2,3", "dltrain reproduce --all --budget ci --json"
)
LAB_EXAMPLES = examples(
    "dltrain lab loss --data data/hapt --out models/lab", "dltrain lab --report-only --out models/lab"
)
Experiment = Enum(  # the lab's experiments (a list of Literal values is beyond Typer)
    "Experiment", {name: name for name in ("init", "loss", "optimizers", "schedules", "regularization", "batch-size")}
)

CompareForceOption = Annotated[
    bool, typer.Option(help="Replace the comparison.csv and .png of an earlier compare in --out.")
]
CompareJsonOption = Annotated[
    bool, typer.Option("--json", help="Print the comparison as one JSON list (a row per run) on stdout, nothing else.")
]
RunDirsArgument = Annotated[
    list[Path], typer.Argument(metavar="RUN_DIR", help="Run folders to compare (finished or interrupted).")
]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Folder for comparison.csv and comparison.png (overlaid learning curves)."),
]
DataDirArgument = Annotated[
    Path, typer.Argument(metavar="DATA_DIR", help="Prepared DATA_DIR (from 'dltrain prepare').")
]
GridOption = Annotated[
    list[str],
    typer.Option(
        "--grid",
        "-g",
        help="A key and its values, e.g. --grid optimizer.name=sgd,momentum,adam (repeatable: the product is trained).",
    ),
]
FoldsOption = Annotated[
    int | None,
    typer.Option(
        min=2,
        max=100,
        help="Activity: train every grid point once per subject-grouped fold of the train and val data (no "
        "subject in two folds, the test split in none) and compare mean and spread of the validation scores.",
    ),
]
SweepOutOption = Annotated[
    Path, typer.Option("--out", "-o", help="Folder for one run per grid point, comparison.csv and comparison.png.")
]
ConfigOption = Annotated[
    str | None,
    typer.Option("--config", "-c", help="Preset name or YAML file every run starts from (default: the task's preset)."),
]
OverridesOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a key for every run, e.g. --set train.epochs=5 (repeatable)."),
]
ForceOption = Annotated[bool, typer.Option(help="Replace run folders under --out that belong to another sweep.")]
NamesArgument = Annotated[
    list[str] | None,
    typer.Argument(metavar="BASELINE", help="Baselines to re-run (see baselines.yaml: har-gru, retina-cnn)."),
]
AllBaselinesOption = Annotated[bool, typer.Option("--all", help="Re-run every baseline.")]
BudgetOption = Annotated[
    Literal["ci", "full"], typer.Option(help="ci (minutes, a wide band) or full (the preset's budget, the real band).")
]
ReproduceOutOption = Annotated[Path, typer.Option("--out", "-o", help="Folder for each baseline's data and run.")]
AsJsonOption = Annotated[bool, typer.Option("--json", help="Print the results as one JSON list on stdout.")]
SeedsOption = Annotated[
    str | None,
    typer.Option(
        help="Train each baseline once per seed (e.g. 1,2,3), from scratch; the band is checked on the mean, and "
        "the table shows mean and standard deviation (default: the preset's seed)."
    ),
]
BackendOption = Annotated[
    Literal["tensorflow", "jax"],
    typer.Option(envvar="KERAS_BACKEND", help="Keras backend to train on: tensorflow or jax (the jax extra)."),
]
ExperimentsArgument = Annotated[
    list[Experiment] | None,
    typer.Argument(
        metavar="EXPERIMENT",
        help="Experiments to run: init, loss, optimizers, schedules, regularization, batch-size (default: all, "
        "in the lecture's order).",
    ),
]
DataOption = Annotated[
    Path, typer.Option("--data", "-d", help="Prepared activity DATA_DIR, e.g. from 'dltrain prepare har hapt'.")
]
LabOutOption = Annotated[
    Path, typer.Option("--out", "-o", help="Folder for each experiment's runs, table and figure, and REPORT.md.")
]
LabBudgetOption = Annotated[
    Literal["quick", "full"],
    typer.Option(
        help=f"quick: {BUDGETS['quick'].describe()} (about 11 minutes for all six on HAPT on 2 CPU cores). "
        f"full: {BUDGETS['full'].describe()}. Every cell trains with 3 seeds."
    ),
]
LabOverridesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="Override a key in every run, e.g. --set model.units=16 (repeatable; train.seed is the lab's own).",
    ),
]
LabForceOption = Annotated[bool, typer.Option(help="Replace run folders under --out that hold other runs.")]
ReportOnlyOption = Annotated[
    bool, typer.Option(help="Train nothing: rebuild REPORT.md, tables and figures from the runs already under --out.")
]


@user_errors
def compare(
    run_dirs: RunDirsArgument,
    out: OutOption = None,
    force: CompareForceOption = False,
    as_json: CompareJsonOption = False,
) -> None:
    """Compare runs: the settings that differ, validation and test scores, epochs and time, in the order given.

    Validation scores are starred where they chose the epochs; test scores show where 'evaluate --split test' ran.
    """
    from rich.console import Console

    from dltrain.runs.compare import compare_runs, comparison_table

    frame = compare_runs(run_dirs, out, force)
    if as_json:
        sys.stdout.write(frame.to_json(orient="records") + "\n")
        return
    width = table_width()
    Console(width=width).print(comparison_table(frame, width or Console().width))
    if out is not None:
        stderr_console.print(f"wrote {out}/comparison.csv and {out}/comparison.png", highlight=False)


EnsembleRunsArgument = Annotated[
    list[Path], typer.Argument(metavar="RUN_DIR", help="Complete runs of one task on the same data (two or more).")
]
EnsembleOutOption = Annotated[Path, typer.Option("--out", "-o", help="RUN_DIR to write the ensemble to.")]
EnsembleDataOption = Annotated[
    Path | None, typer.Option("--data", help="The members' DATA_DIR, where it has moved (default: where they trained).")
]
EnsembleForceOption = Annotated[bool, typer.Option(help="Replace a run folder at --out.")]


@user_errors
def ensemble(
    run_dirs: EnsembleRunsArgument,
    out: EnsembleOutOption,
    data: EnsembleDataOption = None,
    force: EnsembleForceOption = False,
) -> None:
    """Average runs into one run: their class probabilities, or a regression head's outputs with cut points tuned anew.

    The result is a run folder with one Keras model: evaluate, predict, compare, export and runs take it.
    """
    from dltrain.experiments.ensemble import ensemble as write_ensemble

    write_ensemble(run_dirs, out, data, force)
    report_run(out)


@user_errors
def sweep(
    data_dir: DataDirArgument,
    grid: GridOption,
    out: SweepOutOption,
    config: ConfigOption = None,
    overrides: OverridesOption = None,
    force: ForceOption = False,
    folds: FoldsOption = None,
) -> None:
    """Train one run per grid point (complete ones are kept, interrupted ones resumed), then compare them."""
    from rich.console import Console

    from dltrain.core.errors import DataError
    from dltrain.experiments.sweep import parse_grid
    from dltrain.experiments.sweep import sweep as run_sweep
    from dltrain.runs.compare import FOLDS_NOTE, VALIDATION_NOTE, comparison_table

    frame, failures = run_sweep(data_dir, config, parse_grid(grid), overrides or [], out, force, folds)
    if frame is not None:
        width = table_width()
        note = FOLDS_NOTE if folds else VALIDATION_NOTE
        Console(width=width).print(comparison_table(frame, width or Console().width, note))
        stderr_console.print(f"wrote {out}/comparison.csv and {out}/comparison.png", highlight=False)
    if failures:
        raise DataError(
            f"{len(failures)} of the sweep's runs failed: "
            + "; ".join(f"{name}: {message}" for name, message in failures)
        )


@user_errors
def reproduce(
    names: NamesArgument = None,
    all_baselines: AllBaselinesOption = False,
    budget: BudgetOption = "ci",
    out: ReproduceOutOption = Path("models/reproduce"),
    as_json: AsJsonOption = False,
    backend: BackendOption = "tensorflow",
    seeds: SeedsOption = None,
) -> None:
    """Re-run baselines from scratch and score the test split once; exit 3 if one left its band.

    Each baseline is prepared, trained with deterministic ops and scored on its test split once.
    """
    from dltrain.core.errors import UsageError
    from dltrain.training.multihost import select_backend

    select_backend(backend, deterministic=True)  # before anything imports Keras (reproduce: deterministic ops)
    from dltrain.experiments.reproduce import load_baselines, parse_seeds, results_table
    from dltrain.experiments.reproduce import reproduce as run_reproduce

    if all_baselines == bool(names):
        raise UsageError(f"name the baselines to re-run or pass --all (baselines: {', '.join(load_baselines())})")
    chosen_seeds = parse_seeds(seeds)
    rows = run_reproduce(list(load_baselines()) if all_baselines else list(names), budget, out, chosen_seeds)
    if as_json:
        sys.stdout.write(json.dumps(rows) + "\n")
    else:
        from rich.console import Console

        Console(width=table_width()).print(results_table(rows))
    regressions = [row["baseline"] for row in rows if row["status"] != "ok"]
    if regressions:
        print_error(f"{', '.join(regressions)} left the expected band")
        raise typer.Exit(REGRESSION_EXIT_CODE)


@user_errors
def lab(
    experiments: ExperimentsArgument = None,
    data: DataOption = Path("data/hapt"),
    out: LabOutOption = Path("models/lab"),
    budget: LabBudgetOption = "quick",
    overrides: LabOverridesOption = None,
    force: LabForceOption = False,
    report_only: ReportOnlyOption = False,
) -> None:
    """The lecture's claims on your data: a small grid per technique, a figure, a table and statements in REPORT.md."""
    from dltrain.experiments.lab.runner import run_lab

    report = run_lab(
        data, out, [experiment.value for experiment in experiments or []], budget, overrides or [], force, report_only
    )
    stderr_console.print(f"wrote {report} (figures beside it, one folder per experiment)", highlight=False)
