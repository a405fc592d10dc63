"""The lab's experiments on how training starts: initialisation (symmetry, saturation, scaled
schemes) and the loss on a saturated output (cross-entropy against squared error)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dltrain.experiments.lab.budgets import Budget
from dltrain.experiments.lab.cells import Cell, CellResult, best_val_accuracy, direction, epochs_trained
from dltrain.experiments.lab.framework import (
    EXPERIMENTS,
    TINY,
    Experiment,
    add_score,
    base_table,
    first_epoch,
    problems,
    ranking,
    verdict,
    with_epochs,
)

# ---- initialisation -------------------------------------------------------------------------------

SILENT = 0.99  # the share of a dense layer's outputs at 0 above which its ReLU units count as silent


@EXPERIMENTS.register("init")
def init_experiment(budget: Budget, meta) -> Experiment:
    cells = [
        Cell("zeros (dense)", ["model.dense_initializer=zeros"]),
        Cell("symmetric (dense)", ["model.dense_initializer=symmetric"]),
        Cell("normal N(0,1)", ["model.initializer=normal", "model.recurrent_initializer=normal"]),
        Cell("glorot_uniform", ["model.initializer=glorot_uniform"]),
        Cell("he_normal", ["model.initializer=he_normal"]),
    ]
    return Experiment(
        "init",
        "Initialisation",
        "Initialised with zeros, all neurons get an equal gradient (units that start alike stay alike); N(0,1) "
        "weights saturate the units; schemes scaled by 1/sqrt(fan-in) (Glorot, He) keep activations and gradients "
        "in a usable range. The `(dense)` cells change the first dense layer alone (the rest Glorot): `zeros` its "
        "kernel, `symmetric` every unit's incoming and outgoing weights alike (model.dense_initializer).",
        with_epochs(cells, budget.epochs),
        summarise_init,
        "activations",
        "initialisation",
    )


def worst(result: CellResult, key: str) -> float:
    """The largest value of a run measure over the cell's seeds (NaN if none measured it)."""
    values = [run.extra[key] for run in result.runs if run.extra.get(key) is not None]
    return max(values) if values else float("nan")


def summarise_init(results: list[CellResult]) -> tuple[pd.DataFrame, list[str]]:
    table = base_table(results)
    table["dense unit gradient norm at init"] = [result.extra_score("unit_gradient_mean").mean for result in results]
    table["largest gradient difference between units at init"] = [
        worst(result, "unit_gradient_difference") for result in results
    ]
    table["largest weight difference between units after training"] = [
        worst(result, "unit_spread") for result in results
    ]
    add_score(table, "GRU saturated at init", [result.extra_score("saturated") for result in results])
    cells = {result.label: result for result in results}
    statements = [
        *zero_layer_statements(cells.get("zeros (dense)")),
        *symmetric_statements(cells.get("symmetric (dense)")),
        *saturation_statements(cells),
    ]
    ordered = ranking(results)
    if ordered:
        statements.append(
            "Best validation accuracy by initialisation (mean ± standard deviation over the seeds): "
            + ", ".join(f"{result.label} {result.score(best_val_accuracy).text()}" for result in ordered)
            + "."
        )
    return table, statements + problems(results)


def zero_layer_statements(zeros: CellResult | None) -> list[str]:
    if zeros is None or not zeros.extra_score("unit_gradient_mean").count:
        return []
    gradient = zeros.extra_score("unit_gradient_mean")
    units = zeros.runs[0].extra.get("dense_units", "its")
    if gradient.mean <= TINY:
        return [
            f"With the first dense layer's kernel at zero (the rest Glorot), its {units} units' kernel gradients "
            f"before training were all zero (mean norm {gradient.mean:.1e} over {gradient.count} seeds): a ReLU "
            "whose input is 0 passes no gradient, so the layer is dead rather than one feature computed "
            f"{units} times; best validation accuracy {zeros.score(best_val_accuracy).text()}."
        ]
    return [
        f"With the first dense layer's kernel at zero, its units' kernel gradients before training were not zero "
        f"(mean norm {gradient.mean:.2e}; largest difference between two units "
        f"{worst(zeros, 'unit_gradient_difference'):.1e})."
    ]


def symmetric_statements(symmetric: CellResult | None) -> list[str]:
    if symmetric is None or not symmetric.extra_score("unit_gradient_mean").count:
        return []
    gradient = symmetric.extra_score("unit_gradient_mean")
    difference = worst(symmetric, "unit_gradient_difference")
    units = symmetric.runs[0].extra.get("dense_units", "its")
    equal = "equal" if difference <= TINY else "not equal"
    zero = "non-zero" if gradient.mean > TINY else "zero"
    start = (
        f"With every unit of the first dense layer starting alike (same incoming and outgoing weights), the {units} "
        f"units' kernel gradients before training were {equal} (largest difference between two units "
        f"{difference:.1e}) and {zero} (mean norm {gradient.mean:.2e} over {gradient.count} seeds)"
    )
    trained = [run for run in symmetric.runs if run.extra.get("identical_units") is not None]
    identical = [run for run in trained if run.extra["identical_units"]]
    if not trained:
        return [start + "."]
    spread = worst(symmetric, "unit_spread")
    if len(identical) == len(trained) and equal == "equal" and zero == "non-zero":
        return [
            f"{start}; after training the units were still identical in all {len(trained)} seeds (largest difference "
            f"between two units' weights {spread:.1e}), {what_the_units_did(symmetric, units)}"
        ]
    if len(identical) == len(trained):
        return [
            f"{start}; the units were still identical after training (largest difference {spread:.1e}), but from a "
            "start without equal, non-zero gradients: this run does not show the lecture's case."
        ]
    return [
        f"{start}; after training the units were identical in {len(identical)} of {len(trained)} seeds (largest "
        f"difference between two units' weights {spread:.1e}): this run does not show units that stay alike."
    ]


def saturation_statements(cells: dict[str, CellResult]) -> list[str]:
    normal = cells.get("normal N(0,1)")
    scaled = [cells[label] for label in ("glorot_uniform", "he_normal") if label in cells]
    scaled = [result for result in scaled if result.extra_score("saturated").count]
    if normal is None or not normal.extra_score("saturated").count or not scaled:
        return []
    most = max(scaled, key=lambda result: result.extra_score("saturated").mean)
    comparison = verdict(
        normal.extra_score("saturated"),
        most.extra_score("saturated"),
        f"{most.label}'s, the more saturated of the 1/sqrt(fan-in) schemes",
        ("above", "below", "not separated (by the rule) from"),
    )
    return [
        f"Before training, the share of the GRU's outputs that are saturated (|h| > 0.99) with N(0,1) weights was "
        f"{comparison}."
    ]


# ---- loss ------------------------------------------------------------------------------------------

LOSS_RATE = 0.01  # plain SGD's rate in the loss experiment


@EXPERIMENTS.register("loss")
def loss_experiment(budget: Budget, meta) -> Experiment:
    # N(0,1) weights saturate the softmax from the start, and plain SGD (no per-parameter scaling,
    # which would undo a small gradient) lets the size of the loss's gradient decide the step.
    common = ["model.initializer=normal", "optimizer.name=sgd", f"optimizer.learning_rate={LOSS_RATE}"]
    cells = [Cell("cross-entropy", ["train.loss=crossentropy", *common]), Cell("MSE", ["train.loss=mse", *common])]
    return Experiment(
        "loss",
        "Loss: cross-entropy vs squared error",
        "On a saturated softmax output, squared error gives vanishing gradients and learning stalls; "
        f"cross-entropy's gradient stays proportional to the error. Both cells: N(0,1) weights, plain SGD at "
        f"{LOSS_RATE:g}.",
        with_epochs(cells, budget.epochs),
        summarise_loss,
        measurement="output",
    )


def summarise_loss(results: list[CellResult]) -> tuple[pd.DataFrame, list[str]]:
    table = base_table(results)
    table["val accuracy after epoch 1"] = [result.score(first_epoch("val_accuracy")).mean for result in results]
    add_score(table, "softmax saturated at init", [result.extra_score("softmax_saturated") for result in results])
    add_score(table, "output gradient norm at init", [result.extra_score("output_gradient_norm") for result in results])
    cells = {result.label: result for result in results}
    entropy, squared = cells.get("cross-entropy"), cells.get("MSE")
    if not (entropy and squared):
        return table, problems(results)
    statements = saturated_start(entropy, squared)
    if entropy.usable and squared.usable:
        statements.append(loss_outcome(entropy, squared))
    return table, statements + problems(results)


def loss_outcome(entropy: CellResult, squared: CellResult) -> str:
    relation = direction(entropy.score(best_val_accuracy), squared.score(best_val_accuracy))
    comparison = verdict(entropy.score(best_val_accuracy), squared.score(best_val_accuracy), "squared error's")
    meaning = {
        1: "squared error learned less",
        -1: "this run does not show the claim",
        0: "within the seed-to-seed noise, this run does not show a stall",
    }[relation]
    return (
        f"Over {entropy.score(epochs_trained).mean:.0f} epochs, cross-entropy's best validation accuracy was "
        f"{comparison}: {meaning}."
    )


def saturated_start(entropy: CellResult, squared: CellResult) -> list[str]:
    saturated = entropy.extra_score("softmax_saturated")  # the same models as squared error's (seeded alike)
    if not saturated.count:
        return []
    start = (
        f"Measured before training on {entropy.runs[0].extra.get('probe_windows', 'the')} training windows: "
        f"{saturated.mean:.0%} of the softmax outputs had a largest probability above 0.99 (mean over "
        f"{saturated.count} seeds)"
    )
    if saturated.mean < 0.5:
        start += ", so the start was not saturated for most windows"
    gradient = verdict(
        entropy.extra_score("output_gradient_norm"),
        squared.extra_score("output_gradient_norm"),
        "the one under squared error",
        ("larger than", "smaller than", "not separated (by the rule) from"),
    )
    return [f"{start}; the output layer's kernel gradient norm under cross-entropy was {gradient}."]


def what_the_units_did(result: CellResult, units) -> str:
    """The end of the symmetric cell's sentence, from what its trained units did on validation windows."""
    accuracy = result.score(best_val_accuracy).text()
    probed = [run.extra for run in result.runs if "dense_silent" in run.extra]
    if not probed:
        return f"so the layer computes one feature {units} times; best validation accuracy {accuracy}."
    silent = float(np.mean([extra["dense_silent"] for extra in probed]))
    answer = float(np.mean([extra["one_answer_share"] for extra in probed]))
    majority = float(np.mean([extra["majority_share"] for extra in probed]))
    if silent >= SILENT:
        return (
            f"and silent: their ReLU output was 0 on {silent:.0%} of the validation windows probed, so the head "
            f"saw no feature at all and gave one answer to {answer:.0%} of them (the most frequent class is "
            f"{majority:.0%}); best validation accuracy {accuracy}."
        )
    spread = float(np.mean([extra["dense_feature_std"] for extra in probed]))
    return (
        f"and active (output 0 on {silent:.0%} of the validation windows probed; the one feature's spread across "
        f"them {spread:.2g}): the layer computes one feature {units} times, and the head gave its most frequent "
        f"answer to {answer:.0%} of the windows (the most frequent class is {majority:.0%}); best validation "
        f"accuracy {accuracy}."
    )
