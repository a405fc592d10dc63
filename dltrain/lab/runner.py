"""Run the lab's experiments on a DATA_DIR and write DIR/REPORT.md with one figure per experiment.

Each experiment trains its cells with the sweep machinery (complete cells are kept when the lab
is run again, interrupted ones resumed, a failing one reported while the rest go on), compares
them, and adds its figure, table and generated statements to the report.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import pandas as pd

from dltrain.config.loading import load_config
from dltrain.core.errors import DataError, DltrainError, UsageError
from dltrain.core.files import write_text_atomic
from dltrain.core.outputs import refuse_file_as_folder
from dltrain.data.datadir import DataDir
from dltrain.lab.experiments import BUDGET_EPOCHS, EXPERIMENTS, LAB_BASE, CellResult, Experiment
from dltrain.reporting.tables import format_cell
from dltrain.runs.rundir import HISTORY_FILE, MODEL_FILE, Provenance, Run
from dltrain.tasks import task_of

logger = logging.getLogger("dltrain")
LAB_ORDER = ("init", "loss", "optimizers", "schedules", "regularization", "batch-size")  # the lecture's order
REPORT_FILE = "REPORT.md"
LAB_PRESET = "har-gru"  # the lab's base model, made small and plain by LAB_BASE
TIMING_FILE = "epoch-seconds.json"  # per cell: the seconds of each epoch's training batches


def check_experiments(names: list[str]) -> list[str]:
    for name in names:
        EXPERIMENTS.get(name)  # an unknown name: one line listing the valid ones
    return sorted(set(names), key=LAB_ORDER.index) if names else list(LAB_ORDER)


def run_lab(
    data_dir: Path,
    out: Path,
    names: list[str],
    budget: str = "quick",
    overrides: list[str] | None = None,
    force: bool = False,
    report_only: bool = False,
) -> Path:
    """Train every experiment's cells under `out` and write REPORT.md; with `report_only`, rebuild
    the report from the runs already there (a missing run is reported as such)."""
    if budget not in BUDGET_EPOCHS:
        raise UsageError(f"--budget {budget}: choose {' or '.join(BUDGET_EPOCHS)}")
    names = (
        reported_experiments(check_experiments(names), out) if report_only and not names else check_experiments(names)
    )
    refuse_file_as_folder(out)
    data = lab_data(data_dir)
    # Every cell's config is validated before the first run.
    plans = [
        (experiment, grid_points(experiment, overrides or []))
        for experiment in (EXPERIMENTS.get(name)(budget, data.meta) for name in names)
    ]
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    sections = [run_experiment(experiment, points, data, out, force, report_only) for experiment, points in plans]
    report = out / REPORT_FILE
    minutes = (time.perf_counter() - started) / 60
    write_text_atomic(report, "\n".join(report_header(data, budget, overrides, report_only, minutes) + sections))
    return report


def reported_experiments(names: list[str], out: Path) -> list[str]:
    """--report-only without names: the experiments that have runs under `out`."""
    found = [name for name in names if (out / name / "runs").is_dir()]
    if not found:
        raise DataError(f"{out}: no lab runs to report on; train them first: dltrain lab --data DATA_DIR --out {out}")
    return found


def lab_data(data_dir: Path) -> DataDir:
    """The DATA_DIR, refused in one line unless the lab's preset can train on it."""
    data = DataDir.open(data_dir)
    try:
        task_of(data.meta).check_config(load_config(LAB_PRESET, LAB_BASE), data)
    except UsageError:
        raise UsageError(
            f"{data_dir} holds {data.task} data; the lab's {LAB_PRESET} runs on activity data "
            "(make it with 'dltrain prepare har hapt')"
        ) from None
    return data


def grid_points(experiment: Experiment, overrides: list[str]) -> list:
    from dltrain.runs.sweep import GridPoint

    points = []
    for cell in experiment.cells:
        settings = [*LAB_BASE, *cell.overrides, *overrides]
        points.append(GridPoint(_folder(cell.label), settings, load_config(LAB_PRESET, settings)))
    return points


def run_experiment(
    experiment: Experiment, points: list, data: DataDir, out: Path, force: bool, report_only: bool
) -> str:
    """Train (or with `report_only`, find) the experiment's runs; its section of the report."""
    from dltrain.runs.sweep import train_points
    from dltrain.training.callbacks import EpochSeconds

    logger.info("lab experiment %s: %d runs", experiment.name, len(points))
    runs = out / experiment.name / "runs"
    if report_only:
        runs.mkdir(parents=True, exist_ok=True)  # an experiment never trained: its section says so
        missing = [point for point in points if not (runs / point.name / HISTORY_FILE).is_file()]
        failures = {point.name: f"no run in {runs / point.name}" for point in missing}
    else:
        timing = lambda point: [EpochSeconds(runs / point.name / TIMING_FILE)]  # noqa: E731
        failures = dict(train_points(data.path, LAB_PRESET, points, runs, force, extra_callbacks=timing))
    cells = zip(experiment.cells, points)
    results = [_result(cell.label, runs / point.name, failures.get(point.name)) for cell, point in cells]
    if experiment.name == "init":
        _probe_initialisation(results, points, data)
    return _section(experiment, results, out)


def report_header(
    data: DataDir, budget: str, overrides: list[str] | None, report_only: bool, minutes: float
) -> list[str]:
    meta = data.meta
    command = " ".join(["dltrain", *sys.argv[1:]]) if sys.argv[0].endswith("dltrain") else "run_lab(...)"
    extra = " and " + " ".join(overrides) if overrides else ""
    kept = (
        " (the report only, from runs trained earlier)."
        if report_only
        else " (runs kept from an earlier call count as nothing)."
    )
    return [
        "# The lecture, reproduced",
        "",
        f"Data: `{data.path}` ({meta.source.get('kind', meta.task)}; train {meta.split_size('train')} windows). "
        f"Budget: {budget} ({BUDGET_EPOCHS[budget]} epochs a run unless a cell says otherwise). "
        f"Model: the `{LAB_PRESET}` preset with `{' '.join(LAB_BASE)}`{extra}.",
        f"Made by `{command}` in {minutes:.1f} minutes{kept}",
        "Every sentence below is generated from the numbers in its table: it changes when they do, and a claim "
        "the runs did not bear out is reported as such.",
        "",
    ]


def _folder(label: str) -> str:
    return "".join(character if character.isalnum() or character in "._-" else "-" for character in label)


def _result(label: str, run_dir: Path, failure: str | None) -> CellResult:
    """A cell's run as the report sees it; a run that is missing or damaged is a failed cell, named."""
    try:
        run = Run.open(run_dir, finished=False)
        history = run.history()
        timing = run_dir / TIMING_FILE
        seconds = json.loads(timing.read_text()) if timing.is_file() else []
    except (DltrainError, ValueError, OSError) as error:  # ValueError: a damaged timing file
        return CellResult(label, run_dir, None, Provenance(), failure or str(error), [])
    history = None if history.empty else history
    if (
        history is not None
        and (not isinstance(seconds, list) or len(seconds) != len(history))
        and run.provenance.train_seconds
    ):
        seconds = [run.provenance.train_seconds / len(history)] * len(
            history
        )  # a run resumed or kept from before the lab timed it
    return CellResult(label, run_dir, history, run.provenance, failure, seconds)


def _probe_initialisation(results: list[CellResult], points, data: DataDir) -> None:
    """Activation statistics and gradient norms before training; the dense layer's unit spread after."""
    import keras

    from dltrain.data.feeds import encode_targets
    from dltrain.lab.probes import initial_statistics, unit_spread, units_identical
    from dltrain.training.building import build_model

    train = data.split("train")
    for result, point in zip(results, points):
        keras.utils.set_random_seed(point.config.train.seed)
        model = build_model(data, point.config, 1)
        rows = initial_statistics(
            model, train.x, encode_targets(train.y, point.config, len(data.meta.classes)), model.loss
        )
        result.extra["layers"] = rows
        gru = [row["saturated"] for row in rows if row["saturated"] is not None]
        result.extra["saturated"] = gru[0] if gru else None
        if result.usable and (result.run_dir / MODEL_FILE).is_file():
            trained = keras.saving.load_model(result.run_dir / MODEL_FILE, safe_mode=True, compile=False)
            spread = unit_spread(trained)
            result.extra.update(
                unit_spread=spread, identical_units=units_identical(spread), dense_units=point.config.model.dense_units
            )


def _markdown_table(frame: pd.DataFrame) -> str:
    def cell(value) -> str:
        return format_cell(value, missing="n/a").replace("|", "/")

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def _section(experiment: Experiment, results: list[CellResult], out: Path) -> str:
    from dltrain.lab.figures import plot_experiment

    table, statements = experiment.summarise(results)
    folder = out / experiment.name
    write_text_atomic(folder / "table.csv", table.to_csv(index=False))
    figure = folder / f"{experiment.name}.png"
    plot_experiment(experiment, results, figure)
    lines = [
        f"## {experiment.title}",
        "",
        f"_The lecture:_ {experiment.claim}",
        "",
        f"![{experiment.title}]({figure.relative_to(out)})",
        "",
        _markdown_table(table),
        "",
        *[f"- {statement}" for statement in statements],
        "",
    ]
    if experiment.name == "init":
        lines += _layer_table(results)
    return "\n".join(lines)


def _layer_table(results: list[CellResult]) -> list[str]:
    rows = [{"cell": result.label, **row} for result in results for row in result.extra.get("layers", [])]
    if not rows:
        return []
    frame = pd.DataFrame(rows).rename(
        columns={"std": "output std", "saturated": "saturated share", "gradient_norm": "kernel gradient norm"}
    )
    return ["Per layer, on 256 training windows before any update:", "", _markdown_table(frame), ""]
