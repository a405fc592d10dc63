"""The lab's regularisation experiment: L2, dropout, batch normalisation and early stopping against
the gap between the kept model's accuracy on its training windows and on validation subjects that
chose nothing, in an overfitting regime, scored in inference mode."""

from __future__ import annotations

import pandas as pd

from dltrain.experiments.lab.budgets import Budget
from dltrain.experiments.lab.cells import Cell, CellResult, difference_text, direction
from dltrain.experiments.lab.framework import EXPERIMENTS, Experiment, add_score, base_table, by_label, problems

OVERFITTING_WINDOWS = 256  # training windows: few enough for a wide model to learn them by heart
OVERFITTING_STEPS = 12  # optimizer steps an epoch (three passes over those windows at a batch of 64)


@EXPERIMENTS.register("regularization")
def regularization_experiment(budget: Budget, meta) -> Experiment:
    # An overfitting regime, so that there is a gap to shrink: few windows, a wider model, three times the epochs.
    common = [
        "model.units=128",
        "model.dense_units=128",
        f"train.epochs={3 * budget.epochs}",
        f"train.min_steps_per_epoch={OVERFITTING_STEPS}",
    ]
    stopping = ["early_stopping.patience=3", "early_stopping.restore_best=true", "early_stopping.monitor=val_loss"]
    cells = [
        Cell("none", common),
        Cell("L2 1e-3", ["regularization.l2=0.001", *common]),
        Cell("dropout 0.5", ["model.dropout=0.5", *common]),
        Cell("batch norm", ["model.batch_norm=true", *common]),
        Cell("early stopping", [*stopping, *common]),
    ]
    return Experiment(
        "regularization",
        "Regularisation",
        "L2, dropout, batch normalisation and early stopping shrink the gap between training and validation "
        f"performance. In an overfitting regime (a seeded sample of {OVERFITTING_WINDOWS} training windows, a GRU "
        f"of 128 units and a dense layer of 128, {3 * budget.epochs} epochs of {OVERFITTING_STEPS} steps), every "
        "other validation subject validates (early stopping's best epoch is chosen there) and the other validation "
        "subjects' windows choose nothing (with fewer than two validation subjects: every other window): the gap "
        "is the kept model's accuracy on its training windows minus "
        "its accuracy on those held-out windows, both in inference mode (no dropout, batch norm's moving "
        "statistics).",
        cells,
        summarise_regularization,
        "gap",
        "kept_accuracy",
        held_out_subset=OVERFITTING_WINDOWS,
    )


def summarise_regularization(results: list[CellResult]) -> tuple[pd.DataFrame, list[str]]:
    table = base_table(results)
    table["kept epoch"] = [
        result.score(lambda run: run.provenance.best_epoch or float("nan")).mean for result in results
    ]
    add_score(table, "kept model train accuracy", [result.extra_score("train_accuracy") for result in results])
    add_score(table, "kept model val accuracy", [result.extra_score("val_accuracy") for result in results])
    add_score(table, "kept model held-out accuracy", [result.extra_score("held_out_accuracy") for result in results])
    add_score(table, "train - held-out accuracy", [result.extra_score("gap") for result in results])
    cells = by_label(results)
    if "none" not in cells or not cells["none"].extra_score("gap").count:
        return table, problems(results)
    baseline = cells["none"].extra_score("gap")
    statements = [
        f"Without regularisation the kept model's training accuracy exceeded its accuracy on the held-out "
        f"validation subjects by {baseline.text()} (inference mode, mean ± standard deviation over the seeds)."
    ]
    groups = {"shrank": [], "level": [], "widened": []}
    for label, result in cells.items():
        if label != "none" and result.extra_score("gap").count:
            gap = result.extra_score("gap")
            groups[{-1: "shrank", 0: "level", 1: "widened"}[direction(gap, baseline)]].append(
                f"{label} ({gap.text()}; {difference_text(gap, baseline)})"
            )
    sentences = {
        "shrank": "Shrank that gap, by the rule: ",
        "level": "Not separated from it (within the seed-to-seed noise): ",
        "widened": "Widened it: ",
    }
    statements += [sentences[key] + ", ".join(items) + "." for key, items in groups.items() if items]
    return table, statements + problems(results)
