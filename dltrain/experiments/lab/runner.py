"""Run the lab's experiments on a DATA_DIR and write DIR/REPORT.md with one figure per experiment.

Each experiment trains its cells, once per seed, with the sweep machinery (complete runs are kept
when the lab is run again, interrupted ones resumed, a failing one reported while the rest go on),
measures what its claim is about on the runs, compares the cells, and adds its figure, table and
generated statements to the report. With a budget that names a number of training windows, every
run trains on one seeded, class-stratified sample of them (DIR/training-subset), validated on all
of the validation windows.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dltrain.config.loading import load_config
from dltrain.core.errors import DataError, DltrainError, UsageError
from dltrain.core.files import write_text_atomic
from dltrain.core.outputs import check_against_inputs, refuse_file_as_folder
from dltrain.data.datadir import DataDir
from dltrain.data.meta import HELD_OUT_SOURCE_KEY
from dltrain.experiments.lab.budgets import BUDGETS, Budget
from dltrain.experiments.lab.catalogue import EXPERIMENTS
from dltrain.experiments.lab.cells import SEEDS, SHOWN_RULE, Cell, CellResult, SeedRun
from dltrain.experiments.lab.framework import LAB_BASE, Experiment
from dltrain.reporting.tables import format_cell
from dltrain.runs.provenance import Provenance
from dltrain.runs.rundir import HISTORY_FILE, MODEL_FILE, Run
from dltrain.tasks import task_of

logger = logging.getLogger("dltrain")
LAB_ORDER = ("init", "loss", "optimizers", "schedules", "regularization", "batch-size")  # the lecture's order
REPORT_FILE = "REPORT.md"
LAB_PRESET = "har-gru"  # the lab's base model, made small and plain by LAB_BASE
TIMING_FILE = "epoch-seconds.json"  # per run: the seconds of each epoch's training batches
SUBSET_FOLDER = "training-subset"  # under --out: the budget's sample of the training windows
SUBSET_SEED = 0


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
    if budget not in BUDGETS:
        raise UsageError(f"--budget {budget}: choose {' or '.join(BUDGETS)}")
    names = (
        reported_experiments(check_experiments(names), out) if report_only and not names else check_experiments(names)
    )
    refuse_file_as_folder(out)
    check_against_inputs(out, [Path(data_dir)])  # before the training sample is written under --out
    data = training_data(lab_data(data_dir), BUDGETS[budget], out)
    experiments = [EXPERIMENTS.get(name)(BUDGETS[budget], data.meta) for name in names]
    for experiment in experiments:  # every cell's config is validated before the first run
        for cell in experiment.cells:
            cell_points(cell, overrides or [])
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    sections, failed = [], []
    for experiment in experiments:
        text, failures = run_experiment(experiment, overrides or [], data, out, force, report_only)
        sections.append(text)
        failed += failures
    report = out / REPORT_FILE
    minutes = (time.perf_counter() - started) / 60
    header = report_header(data, BUDGETS[budget], overrides, report_only, minutes)
    write_text_atomic(report, "\n".join(header + sections))
    if report_only and failed:  # a report of runs that are not there is no report: said, and exit non-zero
        raise DataError(
            f"{len(failed)} lab run(s) under {out} are missing or damaged (first: {failed[0]}); {report} names them; "
            f"train them with: dltrain lab {' '.join(names)} --data DATA_DIR --out {out}"
        )
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


def training_data(data: DataDir, budget: Budget, out: Path) -> DataDir:
    """The DATA_DIR the runs train on: `data`, or the budget's sample of its training windows (written
    once under `out`) when it has more than that."""
    if not budget.train_windows or data.meta.split_size("train") <= budget.train_windows:
        return data
    subset = task_of(data.meta).training_subset(data, budget.train_windows, SUBSET_SEED, out / SUBSET_FOLDER)
    return DataDir.open(subset)


def folder(label: str) -> str:
    """A run folder name for a cell label: `normal N(0,1)` -> `normal-N-0-1`."""
    characters = "".join(character if character.isalnum() or character in "._" else "-" for character in label)
    return "-".join(part for part in characters.split("-") if part)


def cell_points(cell: Cell, overrides: list[str]) -> list:
    """One grid point per seed, `<cell folder>/seed-<n>`; the seed is set last, after --set."""
    from dltrain.experiments.sweep import GridPoint, check_validation_is_held_out

    points = []
    for seed in cell.seeds:
        settings = [*LAB_BASE, *cell.overrides, *overrides, f"train.seed={seed}"]
        config = check_validation_is_held_out(load_config(LAB_PRESET, settings), "the lab")
        points.append(GridPoint(f"{folder(cell.label)}/seed-{seed}", settings, config))
    return points


def run_experiment(
    experiment: Experiment, overrides: list[str], data: DataDir, out: Path, force: bool, report_only: bool
) -> tuple[str, list[str]]:
    """Train (or with `report_only`, find) the experiment's runs, measure them; its section of the report
    and the runs that failed (`<experiment>/<cell>/seed-<n>: why`)."""
    if experiment.held_out_subset:
        task, folder = task_of(data.meta), out / experiment.name / SUBSET_FOLDER
        data = DataDir.open(task.training_subset(data, experiment.held_out_subset, SUBSET_SEED, folder, hold_out=True))
    results = train_cells(experiment.cells, overrides, data, out / experiment.name / "runs", force, report_only)
    while experiment.widen and (wider := experiment.widen(results)):
        results += train_cells(wider, overrides, data, out / experiment.name / "runs", force, report_only)
    if experiment.choose:
        chosen = experiment.choose(results)
        results = train_cells(chosen, overrides, data, out / experiment.name / "runs", force, report_only)
    if experiment.measurement:
        MEASUREMENTS[experiment.measurement](results, data)
    failed = [
        f"{experiment.name}/{run.run_dir.parent.name}/{run.run_dir.name}: {run.failure}"
        for result in results
        for run in result.runs
        if run.failure
    ]
    return section(experiment, results, out), failed


def train_cells(
    cells: list[Cell], overrides: list[str], data: DataDir, runs: Path, force: bool, report_only: bool
) -> list[CellResult]:
    from dltrain.experiments.sweep import train_points
    from dltrain.training.callbacks import EpochSeconds

    points = {cell.label: cell_points(cell, overrides) for cell in cells}
    every = [point for seeds in points.values() for point in seeds]
    logger.info("lab: %d runs into %s", len(every), runs)
    if report_only:
        runs.mkdir(parents=True, exist_ok=True)  # an experiment never trained: its section says so
        missing = [point for point in every if not (runs / point.name / HISTORY_FILE).is_file()]
        failures = {point.name: f"no run in {runs / point.name}" for point in missing}
    else:
        timing = lambda point: [EpochSeconds(runs / point.name / TIMING_FILE)]  # noqa: E731
        failures = dict(train_points(data.path, LAB_PRESET, every, runs, force, extra_callbacks=timing))
    return [
        CellResult(
            cell.label,
            [read_run(point.config, runs / point.name, failures.get(point.name)) for point in points[cell.label]],
            cell.facts,
        )
        for cell in cells
    ]


def report_header(
    data: DataDir, budget: Budget, overrides: list[str] | None, report_only: bool, minutes: float
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
        f"Data: `{data.path}` ({describe_source(meta)}; every run trains on these {meta.split_size('train')} "
        f"windows and is validated on {meta.split_size('val')}, except where an experiment says otherwise (its "
        "own sample of them, with validation subjects held out); the test split is never used). "
        f"Budget: {budget.name}: {budget.describe()}. "
        f"Model: the `{LAB_PRESET}` preset with `{' '.join(LAB_BASE)}`{extra}.",
        f"Every cell is trained once per seed (train.seed {', '.join(map(str, SEEDS))}); tables give the mean and the "
        f"standard deviation over the seeds. The rule for a claim: {SHOWN_RULE}.",
        f"Made by `{command}` in {minutes:.1f} minutes{kept}",
        "Every sentence below is generated from the numbers in its table: it changes when they do, and a claim "
        "the runs did not bear out is reported as such.",
        "",
    ]


def describe_source(meta) -> str:
    source = meta.source or {}
    if source.get("kind") == "subset":
        of = Path(source.get("of", "?"))
        shown = of.relative_to(Path.cwd()) if of.is_relative_to(Path.cwd()) else of  # as the user would type it
        return (
            f"a seeded (seed {source.get('seed')}), class-stratified sample of {source.get('windows')} training "
            f"windows of `{shown}`, with all of its validation windows"
        )
    return str(source.get("kind", meta.task))


def read_run(config, run_dir: Path, failure: str | None) -> SeedRun:
    """A seed's run (trained with `config`) as the report sees it; a run that is missing or damaged is a failed
    run, named."""
    seed = config.train.seed
    try:
        run = Run.open(run_dir, finished=False)
        history = run.history()
        timing = run_dir / TIMING_FILE
        seconds = json.loads(timing.read_text()) if timing.is_file() else []
    except (DltrainError, ValueError, OSError) as error:  # ValueError: a damaged timing file
        return SeedRun(seed, run_dir, None, Provenance(), failure or str(error), [], config=config)
    history = None if history.empty else history
    if history is not None and not (isinstance(seconds, list) and len(seconds) == len(history)):
        # a run resumed or kept from before the lab timed it
        seconds = [run.provenance.train_seconds / len(history)] * len(history) if run.provenance.train_seconds else []
    return SeedRun(seed, run_dir, history, run.provenance, failure, seconds, config=config)


def probe_initialisation(results: list[CellResult], data: DataDir) -> None:
    """Before training: activation statistics and gradient norms per layer, and the dense units' gradients;
    after: the spread of the dense layer's units and what they did on validation windows. One probe per
    seed, from the run's own config."""
    import keras

    from dltrain.data.feeds import encode_targets
    from dltrain.experiments.lab.probes import (
        PROBE_SAMPLES,
        initial_statistics,
        unit_activity,
        unit_gradients,
        unit_spread,
        units_identical,
    )

    train, val = data.split("train"), data.split("val")
    for run in (run for result in results for run in result.runs):
        config = run.config
        keras.utils.set_random_seed(config.train.seed)
        model = build_untrained(data, config)
        targets = encode_targets(train.y, config, len(data.meta.classes))
        rows, gradients = initial_statistics(model, train.x, targets, model.loss)
        gru = [row["saturated"] for row in rows if row["saturated"] is not None]
        run.extra.update(layers=rows, saturated=gru[0] if gru else None, dense_units=config.model.dense_units)
        run.extra["probe_windows"] = min(len(train.x), PROBE_SAMPLES)
        if gradients.get("dense") is not None:
            run.extra.update(unit_gradients(gradients["dense"]))
        if run.usable and (run.run_dir / MODEL_FILE).is_file():
            trained = keras.saving.load_model(run.run_dir / MODEL_FILE, safe_mode=True, compile=False)
            spread = unit_spread(trained)
            run.extra.update(unit_spread=spread, identical_units=units_identical(spread))
            run.extra.update(unit_activity(trained, val.x, val.y))


def probe_output(results: list[CellResult], data: DataDir) -> None:
    """Before training, per seed: how saturated the softmax is and the output layer's gradient under the cell's loss."""
    import keras

    from dltrain.experiments.lab.probes import output_statistics

    train = data.split("train")
    for run in (run for result in results for run in result.runs):
        config = run.config
        keras.utils.set_random_seed(config.train.seed)
        run.extra.update(output_statistics(build_untrained(data, config), train.x, train.y, config.train.loss))


def measure_kept_accuracy(results: list[CellResult], data: DataDir) -> None:
    """The model each run kept, scored in inference mode on its training windows, the validation windows
    and, where the experiment holds validation subjects out (their windows are then `data`'s test split),
    on those; the gap is to the windows that chose nothing: the held-out ones where there are, else val."""
    task = task_of(data.meta)
    held_out = bool(data.meta.source.get(HELD_OUT_SOURCE_KEY))  # never a DATA_DIR's own test subjects
    names = {"train": "train", "val": "val", **({"held_out": "test"} if held_out else {})}
    inputs = {name: task.scoring_inputs(data, split) for name, split in names.items()}
    for run in (run for result in results for run in result.usable_runs):
        if not (run.run_dir / MODEL_FILE).is_file():
            continue
        model = Run.open(run.run_dir, finished=False).load_model()
        accuracy = {
            name: float(np.mean(task.predict_outputs(model, scoring.inputs).argmax(axis=1) == scoring.labels))
            for name, scoring in inputs.items()
        }
        unseen = accuracy.get("held_out", accuracy["val"])
        run.extra.update(
            {f"{name}_accuracy": value for name, value in accuracy.items()}, gap=accuracy["train"] - unseen
        )


MEASUREMENTS = {"initialisation": probe_initialisation, "output": probe_output, "kept_accuracy": measure_kept_accuracy}


def build_untrained(data: DataDir, config):
    from dltrain.training.building import build_model

    return build_model(data, config, 1)


def markdown_table(frame: pd.DataFrame) -> str:
    """The table in Markdown; a `<name> mean` column followed by `<name> std` is shown as one `mean ± std` column."""

    def cell(value) -> str:
        return format_cell(value, missing="n/a").replace("|", "/")

    columns, rows = [], [[] for _ in range(len(frame))]
    names = list(frame.columns)
    for index, name in enumerate(names):
        if name.endswith(" std") and index and names[index - 1] == name.removesuffix(" std") + " mean":
            continue
        paired = name.endswith(" mean") and index + 1 < len(names) and names[index + 1] == name[:-5] + " std"
        columns.append(name[:-5] + " (mean ± std)" if paired else name)
        for row, values in zip(rows, frame.itertuples(index=False)):
            value = cell(values[index])
            if paired and value != "n/a":  # every seed the same: a metric at a ceiling, not certainty
                spread = values[index + 1]
                value = f"{value} ± 0 (saturated)" if spread == 0 else f"{value} ± {cell(spread)}"
            row.append(value)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def section(experiment: Experiment, results: list[CellResult], out: Path) -> str:
    from dltrain.experiments.lab.figures import plot_experiment

    table, statements = experiment.summarise(results)
    folder_path = out / experiment.name
    write_text_atomic(folder_path / "table.csv", table.to_csv(index=False))
    figure = folder_path / f"{experiment.name}.png"
    plot_experiment(experiment, results, figure)
    lines = [
        f"## {experiment.title}",
        "",
        f"_The lecture:_ {experiment.claim}",
        "",
        f"![{experiment.title}]({figure.relative_to(out)})",
        "",
        markdown_table(table),
        "",
        *[f"- {statement}" for statement in statements],
        "",
    ]
    if experiment.measurement == "initialisation":
        lines += layer_table(results)
    return "\n".join(lines)


def layer_table(results: list[CellResult]) -> list[str]:
    """Per layer and cell, the first seed's probe (the seeds' other probes differ only in the draw)."""
    rows = [
        {"cell": result.label, "seed": result.runs[0].seed, **row}
        for result in results
        if result.runs
        for row in result.runs[0].extra.get("layers", [])
    ]
    if not rows:
        return []
    frame = pd.DataFrame(rows).rename(
        columns={"std": "output std", "saturated": "saturated share", "gradient_norm": "kernel gradient norm"}
    )
    windows = results[0].runs[0].extra.get("probe_windows", "the first") if results and results[0].runs else "the"
    return [f"Per layer, on {windows} training windows before any update:", "", markdown_table(frame), ""]
