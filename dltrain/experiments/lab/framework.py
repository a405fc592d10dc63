"""What every lab experiment is made of: the lab's base model (LAB_BASE), an Experiment (its cells,
the lecture's claim, how its results are summarised), the registry of experiments, and the table
and sentence helpers their summaries share.

A difference between cells is stated only when it passes the rule of `dltrain.experiments.lab.cells.shown`
(the difference of the means exceeds twice its standard error over the seeds); otherwise the text
says the runs did not separate them. A failed or diverged run is named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from dltrain.core.registry import Registry
from dltrain.experiments.lab.budgets import Budget
from dltrain.experiments.lab.cells import (
    Cell,
    CellResult,
    Score,
    SeedRun,
    best_val_accuracy,
    difference_text,
    direction,
    epochs_trained,
    final_train_loss,
    final_val_loss,
)

# The lab's model: the activity GRU made small and plain (no batch norm, no dropout, constant
# rate, every epoch kept, an epoch one pass over the training windows) so that what each cell
# changes is the only thing that differs.
LAB_BASE = [
    "model.conv_layers=2",
    "model.units=32",
    "model.layers=1",
    "model.dense_units=32",
    "model.batch_norm=false",
    "model.dropout=0",
    "optimizer.learning_rate=0.003",
    "schedule.name=constant",
    "early_stopping.patience=0",
    "early_stopping.start_from_epoch=0",
    "early_stopping.restore_best=false",
    "train.min_steps_per_epoch=0",
    "train.tensorboard=false",
]
BASE_RATE = 0.003  # Adam's rate in LAB_BASE, at the preset's batch of 64
BASE_BATCH = 64
TINY = 1e-6  # below this a gradient norm counts as zero and a difference between units as none


@dataclass
class Experiment:
    name: str
    title: str
    claim: str  # the lecture's claim, as the report quotes it
    cells: list[Cell]
    summarise: Callable[[list[CellResult]], tuple[pd.DataFrame, list[str]]]
    extra_panel: str | None = None  # "activations", "learning_rate", "gap" or "seconds"
    measurement: str | None = None  # what the runner measures on the runs: "initialisation", "output", "kept_accuracy"
    # With `choose`, `cells` only choose a setting: `choose(their results)` gives the cells compared.
    choose: Callable[[list[CellResult]], list[Cell]] | None = None
    # With `widen`, the selection cells it gives are trained too, until it gives none (a grid widened until
    # its best setting lies inside it).
    widen: Callable[[list[CellResult]], list[Cell]] | None = None
    # With `held_out_subset`, the runs train on that many training windows, validate on every other
    # validation subject, and the other validation subjects' windows, which choose nothing, are measured.
    held_out_subset: int | None = None


EXPERIMENTS: Registry[Callable[[Budget, dict], Experiment]] = Registry("lab experiment")


def with_epochs(cells: list[Cell], epochs: int) -> list[Cell]:
    for cell in cells:
        cell.overrides.append(f"train.epochs={epochs}")
    return cells


def problems(results: list[CellResult]) -> list[str]:
    """One sentence per cell and kind of problem, naming the seeds it hit."""
    sentences = []
    for result in results:
        seeds_by_problem: dict[str, list[str]] = {}
        for run in result.runs:
            if run.problem:
                seeds_by_problem.setdefault(run.problem, []).append(str(run.seed))
        sentences += [
            f"Cell `{result.label}`, seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}: {problem}."
            for problem, seeds in seeds_by_problem.items()
        ]
    return sentences


def number(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def add_score(table: pd.DataFrame, name: str, scores: list[Score]) -> None:
    """Two columns, `<name> mean` and `<name> std`, over each cell's seeds."""
    table[f"{name} mean"] = [score.mean for score in scores]
    table[f"{name} std"] = [score.std for score in scores]


def base_table(results: list[CellResult]) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "cell": [result.label for result in results],
            "seeds": [f"{len(result.usable_runs)}/{len(result.runs)}" for result in results],
            "epochs": [round(result.score(epochs_trained).mean, 1) for result in results],
            "final train loss": [result.score(final_train_loss).mean for result in results],
        }
    )
    add_score(table, "final val loss", [result.score(final_val_loss) for result in results])
    add_score(table, "best val accuracy", [result.score(best_val_accuracy) for result in results])
    table["status"] = [result.status for result in results]
    return table


def ranking(results: list[CellResult], measure=best_val_accuracy) -> list[CellResult]:
    usable = [result for result in results if math.isfinite(result.score(measure).mean)]
    return sorted(usable, key=lambda result: -result.score(measure).mean)


def by_label(results: list[CellResult]) -> dict[str, CellResult]:
    return {result.label: result for result in results if result.usable}


RELATIONS = ("above", "below", "not separated (by the rule) from")


def verdict(first: Score, second: Score, other: str, words: tuple[str, str, str] = RELATIONS) -> str:
    """`<above, below or level> <other> (the numbers the rule read)`: the word by the shown rule."""
    word = {1: words[0], -1: words[1], 0: words[2]}[direction(first, second)]
    return f"{word} {other} ({first.text()} vs {second.text()}; {difference_text(first, second)})"


def first_epoch(column: str) -> Callable[[SeedRun], float]:
    return lambda run: float(run.history[column].iloc[0]) if run.usable and column in run.history else float("nan")
