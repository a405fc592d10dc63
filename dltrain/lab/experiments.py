"""The lab's experiments: for each claim of the lecture, the cells that test it (each trained once
per seed), and the sentences that say what the measured numbers show.

Every sentence is built from the results table. A difference between cells is stated only when it
passes the rule of `dltrain.lab.cells.shown` (the difference of the means exceeds twice its standard
error over the seeds); otherwise the text says the runs did not separate them. A failed or diverged
run is named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dltrain.core.registry import Registry
from dltrain.lab.budgets import Budget
from dltrain.lab.cells import (
    SEEDS,
    SELECTION_SEED,
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
    training_seconds,
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


# ---- initialisation -------------------------------------------------------------------------------


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
            f"between two units' weights {spread:.1e}): the layer computes one feature {units} times; best validation "
            f"accuracy {symmetric.score(best_val_accuracy).text()}."
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


def first_epoch(column: str) -> Callable[[SeedRun], float]:
    return lambda run: float(run.history[column].iloc[0]) if run.usable and column in run.history else float("nan")


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


# ---- optimizers ------------------------------------------------------------------------------------

# The centre of each optimizer's rate grid (a decade below and above it are tried too).
RATE_CENTRES = {"sgd": 0.03, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.03, "rmsprop": 0.001, "adam": 0.003}
RATE_STEPS = (0.1, 1.0, 10.0)
ADAPTIVE = ("adagrad", "rmsprop", "adam")
PLAIN = ("sgd", "momentum", "nesterov")


def rate_grid(name: str) -> list[float]:
    return [float(f"{RATE_CENTRES[name] * step:.3g}") for step in RATE_STEPS]


@EXPERIMENTS.register("optimizers")
def optimizers_experiment(budget: Budget, meta) -> Experiment:
    grid = [
        Cell(
            f"{name} lr={rate:g}",
            [f"optimizer.name={name}", f"optimizer.learning_rate={rate}", f"train.epochs={budget.epochs}"],
            seeds=(SELECTION_SEED,),
            facts={"optimizer": name, "learning_rate": rate},
        )
        for name in RATE_CENTRES
        for rate in rate_grid(name)
    ]
    return Experiment(
        "optimizers",
        "Optimizers",
        "Momentum and Nesterov speed plain SGD up along consistent directions; Adagrad, RMSprop and Adam adapt the "
        "step per parameter. Each optimizer runs at its own rate, chosen among three a decade apart by validation "
        f"accuracy (one run each, seed {SELECTION_SEED}; never the test split), then trained with seeds "
        f"{', '.join(map(str, SEEDS))}.",
        grid,
        summarise_optimizers,
        choose=lambda selection: chosen_rates(selection, budget.epochs),
    )


def chosen_rates(selection: list[CellResult], epochs: int) -> list[Cell]:
    """One cell per optimizer, at the grid rate whose run reached the best validation accuracy."""
    cells = []
    for name in RATE_CENTRES:
        tried = [result for result in selection if result.facts["optimizer"] == name]
        scores = {result.facts["learning_rate"]: result.score(best_val_accuracy).mean for result in tried}
        finite = {rate: score for rate, score in scores.items() if math.isfinite(score)}
        rate = max(finite, key=finite.get) if finite else RATE_CENTRES[name]
        overrides = [f"optimizer.name={name}", f"optimizer.learning_rate={rate}", f"train.epochs={epochs}"]
        cells.append(Cell(name, overrides, facts={"learning_rate": rate, "grid": scores, "chosen": bool(finite)}))
    return cells


def grid_text(scores: dict) -> str:
    return ", ".join(f"{rate:g}: {number(score)}" for rate, score in scores.items())


def summarise_optimizers(results: list[CellResult]) -> tuple[pd.DataFrame, list[str]]:
    table = base_table(results)
    table.insert(1, "rate", [result.facts.get("learning_rate") for result in results])
    table["grid (rate: best val accuracy, selection seed)"] = [
        grid_text(result.facts.get("grid", {})) for result in results
    ]
    table["val loss after epoch 1"] = [result.score(first_epoch("val_loss")).mean for result in results]
    statements = [rates_statement(results)]
    ordered = ranking(results)
    if ordered:
        statements.append(
            f"At these rates the best mean validation accuracy was {ordered[0].label}'s "
            f"({ordered[0].score(best_val_accuracy).text()}), the lowest {ordered[-1].label}'s "
            f"({ordered[-1].score(best_val_accuracy).text()})."
        )
    cells = by_label(results)
    if "sgd" in cells and "momentum" in cells:
        comparison = verdict(
            cells["momentum"].score(best_val_accuracy), cells["sgd"].score(best_val_accuracy), "plain SGD's"
        )
        statements.append(f"Momentum's best validation accuracy was {comparison}.")
    statements += family_statement(cells)
    return table, statements + problems(results)


def rates_statement(results: list[CellResult]) -> str:
    unchosen = [result.label for result in results if not result.facts.get("chosen", True)]
    chosen = ", ".join(f"{result.label} {result.facts.get('learning_rate', float('nan')):g}" for result in results)
    text = f"Rates chosen on the validation split, one run per grid rate: {chosen}."
    if unchosen:
        text += f" No grid run of {', '.join(unchosen)} finished an epoch: the centre rate was used."
    return text


def family_statement(cells: dict[str, CellResult]) -> list[str]:
    adaptive = Score.of(
        value for name in ADAPTIVE if name in cells for value in cells[name].score(best_val_accuracy).values
    )
    plain = Score.of(value for name in PLAIN if name in cells for value in cells[name].score(best_val_accuracy).values)
    if not (adaptive.count and plain.count):
        return []
    comparison = verdict(adaptive, plain, "the SGD family's")
    return [f"The adaptive methods' best validation accuracy, pooled over their runs, was {comparison}."]


# ---- schedules -------------------------------------------------------------------------------------

SCHEDULE_RATE = 0.03


@EXPERIMENTS.register("schedules")
def schedules_experiment(budget: Budget, meta) -> Experiment:
    epochs = budget.epochs
    common = ["optimizer.name=momentum", f"optimizer.learning_rate={SCHEDULE_RATE}", f"train.epochs={epochs}"]
    cells = [
        Cell("constant", ["schedule.name=constant", *common]),
        Cell("step", ["schedule.name=step", f"schedule.every={max(1, epochs // 3)}", "schedule.factor=0.3", *common]),
        Cell("exponential", ["schedule.name=exponential", f"schedule.decay_rate={3 / epochs:.3g}", *common]),
        Cell("1/t", ["schedule.name=inverse_time", f"schedule.decay_rate={10 / epochs:.3g}", *common]),
        Cell("linear", ["schedule.name=linear", "schedule.final_learning_rate=0", *common]),
    ]
    return Experiment(
        "schedules",
        "Learning-rate annealing",
        "Lowering the rate over training (step, exponential, 1/t, linear) lets SGD settle into a minimum that a "
        f"constant rate keeps overshooting. All cells: SGD with momentum from {SCHEDULE_RATE:g}.",
        cells,
        summarise_schedules,
        "learning_rate",
    )


def summarise_schedules(results: list[CellResult]) -> tuple[pd.DataFrame, list[str]]:
    table = base_table(results)
    table["rate at first epoch"] = [result.score(first_epoch("learning_rate")).mean for result in results]
    table["rate at last epoch"] = [result.score(lambda run: run.last("learning_rate")).mean for result in results]
    cells = by_label(results)
    annealed = [result for label, result in cells.items() if label != "constant"]
    statements = []
    if annealed:
        statements.append(
            f"The rate fell from {SCHEDULE_RATE:g} to "
            + ", ".join(
                f"{result.score(lambda run: run.last('learning_rate')).mean:.2g} ({result.label})"
                for result in annealed
            )
            + " at the last epoch."
        )
    if "constant" in cells and annealed:
        constant = cells["constant"].score(final_val_loss)
        statements += [
            f"{result.label}: final validation loss "
            + verdict(result.score(final_val_loss), constant, "the constant rate's")
            + "."
            for result in annealed
        ]
        lower = [result for result in annealed if direction(result.score(final_val_loss), constant) < 0]
        statements.append(
            f"{len(lower)} of {len(annealed)} annealed schedules ended with a validation loss shown below the "
            "constant rate's" + (": this budget does not show the benefit." if not lower else ".")
        )
    return table, statements + problems(results)


# ---- regularisation --------------------------------------------------------------------------------


@EXPERIMENTS.register("regularization")
def regularization_experiment(budget: Budget, meta) -> Experiment:
    # A wider model than the other experiments, so that there is a gap to shrink.
    common = ["model.units=64", "model.dense_units=64", f"train.epochs={budget.epochs + 2}"]
    stopping = ["early_stopping.patience=2", "early_stopping.restore_best=true", "early_stopping.monitor=val_loss"]
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
        "performance. The gap is measured on the model each run keeps (the last epoch; early stopping: the best "
        "one), scored in inference mode (no dropout, batch norm's moving statistics) on the windows it trained on "
        "and on the validation windows.",
        cells,
        summarise_regularization,
        "gap",
        "kept_accuracy",
    )


def summarise_regularization(results: list[CellResult]) -> tuple[pd.DataFrame, list[str]]:
    table = base_table(results)
    table["kept epoch"] = [
        result.score(lambda run: run.provenance.best_epoch or float("nan")).mean for result in results
    ]
    add_score(table, "kept model train accuracy", [result.extra_score("train_accuracy") for result in results])
    add_score(table, "kept model val accuracy", [result.extra_score("val_accuracy") for result in results])
    add_score(table, "train - val accuracy", [result.extra_score("gap") for result in results])
    cells = by_label(results)
    if "none" not in cells or not cells["none"].extra_score("gap").count:
        return table, problems(results)
    baseline = cells["none"].extra_score("gap")
    statements = [
        f"Without regularisation the kept model's training accuracy exceeded its validation accuracy by "
        f"{baseline.text()} (inference mode, mean ± standard deviation over the seeds)."
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


# ---- batch size ------------------------------------------------------------------------------------

SMALL_BATCH = 8  # for single examples, which would cost a step (most of it fixed) per window


def batch_learning_rate(batch: int) -> float:
    """The rate for a batch size: Adam's square-root scaling from the base rate at 64, BASE_RATE * sqrt(batch / 64)
    (a batch k times larger averages away k times the gradient variance: sqrt(k) times the step keeps the noise
    of the update alike)."""
    return float(f"{BASE_RATE * math.sqrt(batch / BASE_BATCH):.3g}")


@EXPERIMENTS.register("batch-size")
def batch_size_experiment(budget: Budget, meta) -> Experiment:
    samples = meta.split_size("train")
    batches = {f"small batch {SMALL_BATCH}": SMALL_BATCH, "mini-batch 64": BASE_BATCH, f"full batch {samples}": samples}
    cells = [
        Cell(
            label,
            [f"train.batch_size={batch}", f"optimizer.learning_rate={batch_learning_rate(batch)}"],
            facts={"batch": batch},
        )
        for label, batch in batches.items()
    ]
    return Experiment(
        "batch-size",
        "Batch size",
        "Mini-batches make more progress per second of compute than both full-batch gradient descent and "
        f"single-example updates. Every cell: Adam for the same epochs (each window seen as often), at the rate "
        f"{BASE_RATE:g} x sqrt(batch / {BASE_BATCH}); a batch of {SMALL_BATCH} stands in for single examples.",
        with_epochs(cells, budget.epochs),
        summarise_batch_size,
        "seconds",
    )


def best_loss_within(run: SeedRun, seconds: float) -> float:
    """The lowest validation loss among the epochs finished within `seconds` of training."""
    if not run.usable or not run.epoch_seconds:
        return float("nan")
    finished = int((np.cumsum(run.epoch_seconds) <= seconds * 1.0001).sum())
    return float(run.history["val_loss"].iloc[:finished].min()) if finished else float("nan")


def summarise_batch_size(results: list[CellResult]) -> tuple[pd.DataFrame, list[str]]:
    table = base_table(results)
    table.insert(
        1,
        "rate",
        [batch_learning_rate(result.facts["batch"]) if "batch" in result.facts else None for result in results],
    )
    add_score(table, "training seconds", [result.score(training_seconds) for result in results])
    timed = [run for result in results for run in result.usable_runs if run.epoch_seconds]
    if len(results) != 3 or not all(result.usable for result in results) or not timed:
        return table, problems(results)
    # Compared when every run has been evaluated at least once: the slowest first epoch's end.
    budget = max(run.epoch_seconds[0] for run in timed)
    within = [result.score(lambda run: best_loss_within(run, budget)) for result in results]
    add_score(table, f"lowest val loss within {budget:.0f} s", within)
    mini = next((index for index, result in enumerate(results) if result.label.startswith("mini-batch")), None)
    if mini is None:
        return table, problems(results)
    statements = [epochs_statement(results, mini), seconds_statement(results, within, mini, budget)]
    return table, statements + problems(results)


def epochs_statement(results: list[CellResult], mini: int) -> str:
    reference = results[mini]
    others = [
        verdict(
            reference.score(final_val_loss),
            result.score(final_val_loss),
            f"{result.label}'s ({result.score(training_seconds).mean:.0f} s of training)",
        )
        for index, result in enumerate(results)
        if index != mini
    ]
    return (
        f"After {reference.score(epochs_trained).mean:.0f} epochs each (every window seen as often), the mini-batch "
        f"runs' final validation loss ({reference.score(training_seconds).mean:.0f} s of training) was "
        + "; and ".join(others)
        + "."
    )


def seconds_statement(results: list[CellResult], within: list[Score], mini: int, budget: float) -> str:
    others = [index for index in range(len(results)) if index != mini]
    lower = [index for index in others if direction(within[mini], within[index]) < 0]
    listing = ", ".join(f"{result.label} {score.text()}" for result, score in zip(results, within))
    if len(lower) == len(others):
        return (
            f"Within the first {budget:.0f} s of training (when every run had been evaluated once), the mini-batch "
            f"runs reached a lower validation loss than both others, by the rule ({listing})."
        )
    return (
        f"Within the first {budget:.0f} s of training, the mini-batch runs' lowest validation loss was shown below "
        f"{len(lower)} of the {len(others)} other cells ({listing}): this run does not show mini-batches ahead of both."
    )


def planned_work(budget: Budget, meta) -> tuple[int, int]:
    """Runs and their most epochs, over every experiment, as planned before training (the optimizers' chosen
    cells counted at their grid's size)."""
    runs = epochs = 0
    for name in EXPERIMENTS.names():
        experiment = EXPERIMENTS.get(name)(budget, meta)
        cells = experiment.cells + (experiment.choose(grid_placeholder(experiment.cells)) if experiment.choose else [])
        for cell in cells:
            count = next(
                int(item.split("=")[1]) for item in reversed(cell.overrides) if item.startswith("train.epochs=")
            )
            runs += len(cell.seeds)
            epochs += len(cell.seeds) * count
    return runs, epochs


def grid_placeholder(cells: list[Cell]) -> list[CellResult]:
    return [CellResult(cell.label, [], cell.facts) for cell in cells]
