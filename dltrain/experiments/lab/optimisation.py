"""The lab's experiments on the optimisation itself: the optimizers (each at its own rate, chosen on
validation), learning-rate annealing, and the batch size."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dltrain.experiments.lab.budgets import Budget
from dltrain.experiments.lab.cells import (
    SEEDS,
    SELECTION_SEED,
    Cell,
    CellResult,
    Score,
    SeedRun,
    best_val_accuracy,
    direction,
    epochs_trained,
    final_val_loss,
    training_seconds,
)
from dltrain.experiments.lab.framework import (
    BASE_BATCH,
    BASE_RATE,
    EXPERIMENTS,
    Experiment,
    add_score,
    base_table,
    by_label,
    first_epoch,
    number,
    problems,
    ranking,
    verdict,
    with_epochs,
)

# ---- optimizers ------------------------------------------------------------------------------------

# The centre of each optimizer's rate grid (a decade below and above it are tried too).
RATE_CENTRES = {"sgd": 0.03, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.03, "rmsprop": 0.001, "adam": 0.003}
RATE_STEPS = (0.1, 1.0, 10.0)
ADAPTIVE = ("adagrad", "rmsprop", "adam")
PLAIN = ("sgd", "momentum", "nesterov")


MAX_WIDENING = 2  # decades a grid may grow beyond either end while its best rate sits at that end


def rate_grid(name: str) -> list[float]:
    return [float(f"{RATE_CENTRES[name] * step:.3g}") for step in RATE_STEPS]


def selection_cell(name: str, rate: float, epochs: int) -> Cell:
    return Cell(
        f"{name} lr={rate:g}",
        [f"optimizer.name={name}", f"optimizer.learning_rate={rate}", f"train.epochs={epochs}"],
        seeds=(SELECTION_SEED,),
        facts={"optimizer": name, "learning_rate": rate},
    )


def widened_rates(selection: list[CellResult], epochs: int) -> list[Cell]:
    """A decade beyond the end of an optimizer's grid where its best rate so far sits at that end (at most
    MAX_WIDENING decades each way); none once every best lies inside its grid. A rate beyond that failed or
    diverged ends the widening on its side: the best is then inside what can be trained."""
    cells = []
    for name in RATE_CENTRES:
        own = [result for result in selection if result.facts["optimizer"] == name]
        tried = {result.facts["learning_rate"]: result.score(best_val_accuracy).mean for result in own}
        finite = {rate: score for rate, score in tried.items() if math.isfinite(score)}
        if not finite:
            continue
        best, rates, grid = max(finite, key=finite.get), sorted(tried), rate_grid(name)
        lowest, highest = min(grid) / 10**MAX_WIDENING, max(grid) * 10**MAX_WIDENING
        for end, step in ((rates[0], 0.1), (rates[-1], 10.0)):
            beyond = float(f"{end * step:.3g}")
            if best == end and lowest * 0.999 <= beyond <= highest * 1.001:
                cells.append(selection_cell(name, beyond, epochs))
    return cells


@EXPERIMENTS.register("optimizers")
def optimizers_experiment(budget: Budget, meta) -> Experiment:
    grid = [selection_cell(name, rate, budget.epochs) for name in RATE_CENTRES for rate in rate_grid(name)]
    return Experiment(
        "optimizers",
        "Optimizers",
        "Momentum and Nesterov speed plain SGD up along consistent directions; Adagrad, RMSprop and Adam adapt the "
        "step per parameter. Each optimizer runs at its own rate, chosen by validation accuracy among rates a "
        f"decade apart (one run each, seed {SELECTION_SEED}; never the test split; three to start with, the grid "
        f"widened by a decade while its best rate sits at an end, up to {MAX_WIDENING} each way), then trained with "
        f"seeds {', '.join(map(str, SEEDS))}.",
        grid,
        summarise_optimizers,
        choose=lambda selection: chosen_rates(selection, budget.epochs),
        widen=lambda selection: widened_rates(selection, budget.epochs),
    )


def chosen_rates(selection: list[CellResult], epochs: int) -> list[Cell]:
    """One cell per optimizer, at the grid rate whose run reached the best validation accuracy."""
    cells = []
    for name in RATE_CENTRES:
        tried = [result for result in selection if result.facts["optimizer"] == name]
        scores = dict(sorted((result.facts["learning_rate"], result.score(best_val_accuracy).mean) for result in tried))
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
    add_score(table, "train loss after epoch 1", [result.score(first_epoch("loss")) for result in results])
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
        # The lecture's claim is one of speed: how far the training loss fell in the same number of steps
        speed = verdict(
            cells["momentum"].score(first_epoch("loss")),
            cells["sgd"].score(first_epoch("loss")),
            "plain SGD's",
            ("above (slower than)", "below (faster than)", "not separated (by the rule) from"),
        )
        statements.append(f"After the first epoch (the same steps for both), momentum's training loss was {speed}.")
    statements += family_statement(cells)
    return table, statements + problems(results)


def rates_statement(results: list[CellResult]) -> str:
    unchosen = [result.label for result in results if not result.facts.get("chosen", True)]
    chosen = ", ".join(f"{result.label} {result.facts.get('learning_rate', float('nan')):g}" for result in results)
    text = f"Rates chosen on the validation split, one run per grid rate: {chosen}."
    if unchosen:
        text += f" No grid run of {', '.join(unchosen)} finished an epoch: the centre rate was used."
    at_end = [result.label for result in results if rate_at_an_end(result.facts)]
    if at_end:
        text += f" Still at an end of its widened grid, so not tuned: {', '.join(at_end)}."
    else:
        text += " Every chosen rate lies inside its grid."
    return text


def rate_at_an_end(facts: dict) -> bool:
    grid = facts.get("grid") or {}
    return bool(grid) and len(grid) > 1 and facts.get("learning_rate") in (min(grid), max(grid))


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

# Momentum's best constant rate in docs/lab-example (its grid: 0.001, 0.01, 0.1): annealing starts at or
# above it, over twice the budget's epochs, in which the constant rate has time to plateau; a schedule
# that starts below the best constant rate can only lose to it.
SCHEDULE_RATE = 0.1
SCHEDULE_EPOCHS = 2  # times the budget's epochs


@EXPERIMENTS.register("schedules")
def schedules_experiment(budget: Budget, meta) -> Experiment:
    epochs = SCHEDULE_EPOCHS * budget.epochs
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
        f"constant rate keeps overshooting. All cells: SGD with momentum from {SCHEDULE_RATE:g} (its best constant "
        f"rate in the optimizers experiment), for {epochs} epochs.",
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
