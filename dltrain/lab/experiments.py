"""The lab's experiments: for each claim of the lecture, the cells (runs) that test it, and the
sentences that say what the measured numbers show.

Every sentence is built from the results table, and a claim is only stated when the numbers bear it
out; otherwise the text says that this run did not show it. A failed or diverged cell is named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dltrain.core.registry import Registry

# The lab's model: the activity GRU made small and plain (no batch norm, no dropout, constant
# rate, every epoch kept) so that what each cell changes is the only thing that differs.
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
]
BUDGET_EPOCHS = {"quick": 6, "full": 20}
CLEAR_MARGIN = 0.01  # accuracy differences below this are called "about the same"


@dataclass
class Cell:
    label: str
    overrides: list[str]


@dataclass
class CellResult:
    label: str
    run_dir: Path
    history: pd.DataFrame | None  # None: the run failed before its first epoch
    provenance: dict
    failure: str | None = None
    epoch_seconds: list[float] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return self.history is not None and not self.history.empty

    @property
    def problem(self) -> str | None:
        """What went wrong in this cell, in words, or None."""
        if self.failure:
            return f"failed: {self.failure}"
        diverged = self.provenance.diverged_at
        if diverged:
            where = f"in epoch {diverged['epoch']}, {diverged['where']}"
            return f"diverged (loss NaN, infinite or exploded, or weights not finite) {where}; its curves stop there"
        return None

    def last(self, column: str) -> float:
        return float(self.history[column].iloc[-1]) if self.usable and column in self.history else float("nan")

    def best(self, column: str, lowest: bool = False) -> float:
        if not self.usable or column not in self.history:
            return float("nan")
        values = self.history[column].dropna()
        return float(values.min() if lowest else values.max()) if not values.empty else float("nan")


@dataclass
class Experiment:
    name: str
    title: str
    claim: str  # the lecture's claim, as the report quotes it
    cells: list[Cell]
    summarise: Callable[[list[CellResult]], tuple[pd.DataFrame, list[str]]]
    extra_panel: str | None = None  # "activations", "learning_rate", "gap" or "seconds"


EXPERIMENTS: Registry[Callable[[str, dict], Experiment]] = Registry("lab experiment")


def problems(results: list[CellResult]) -> list[str]:
    return [f"Cell `{result.label}` {result.problem}." for result in results if result.problem]


def _fmt(value: float) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.3f}"


def _base_table(results: list[CellResult]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "cell": [result.label for result in results],
            "epochs": [len(result.history) if result.usable else 0 for result in results],
            "final train loss": [result.last("loss") for result in results],
            "final val loss": [result.last("val_loss") for result in results],
            "best val accuracy": [result.best("val_accuracy") for result in results],
            "status": [result.problem or "ok" for result in results],
        }
    )


def _ranking(results: list[CellResult], column: str = "val_accuracy") -> list[CellResult]:
    usable = [result for result in results if result.usable and np.isfinite(result.best(column))]
    return sorted(usable, key=lambda result: -result.best(column))


# ---- initialisation -------------------------------------------------------------------------------


@EXPERIMENTS.register("init")
def init_experiment(budget: str, meta: dict) -> Experiment:
    epochs = BUDGET_EPOCHS[budget]
    cells = [
        Cell("zeros", ["model.initializer=zeros", "model.recurrent_initializer=zeros"]),
        Cell("normal N(0,1)", ["model.initializer=normal", "model.recurrent_initializer=normal"]),
        Cell("glorot_uniform", ["model.initializer=glorot_uniform"]),
        Cell("he_normal", ["model.initializer=he_normal"]),
    ]
    for cell in cells:
        cell.overrides.append(f"train.epochs={epochs}")
    return Experiment(
        "init",
        "Initialisation",
        "Zero initialisation keeps the units of a layer identical; N(0,1) weights saturate the "
        "units; schemes scaled by 1/sqrt(fan-in) (Glorot, He) keep activations and gradients in a usable range.",
        cells,
        summarise_init,
        "activations",
    )


def summarise_init(results: list[CellResult]) -> tuple[pd.DataFrame, list[str]]:
    table = _base_table(results)
    table["dense units spread"] = [result.extra.get("unit_spread") for result in results]
    table["GRU saturated at init"] = [result.extra.get("saturated") for result in results]
    statements = []
    by_label = {result.label: result for result in results}
    zeros = by_label.get("zeros")
    if zeros is not None and zeros.extra.get("identical_units"):
        statements.append(
            f"With zero initialisation the {zeros.extra.get('dense_units', 'n')} units of the first dense layer are "
            "still identical "
            f"after training (largest difference between two units' weights: {zeros.extra['unit_spread']:.1e}): the "
            "layer computes one "
            f"feature {zeros.extra.get('dense_units', 'n')} times; best validation accuracy "
            f"{_fmt(zeros.best('val_accuracy'))}."
        )
    elif zeros is not None and zeros.usable:
        statements.append(
            "In this run the zero-initialised dense layer's units did not stay identical (spread "
            f"{_fmt(zeros.extra.get('unit_spread'))})."
        )
    normal = by_label.get("normal N(0,1)")
    scaled = [by_label[label] for label in ("glorot_uniform", "he_normal") if label in by_label]
    saturated = [result.extra.get("saturated") for result in scaled if result.extra.get("saturated") is not None]
    if normal is not None and normal.extra.get("saturated") is not None and saturated:
        if normal.extra["saturated"] > max(saturated) + 0.05:
            statements.append(
                f"Before training, {normal.extra['saturated']:.0%} of the GRU's outputs are saturated (|h| > 0.99) "
                "with N(0,1) weights, "
                f"against {max(saturated):.0%} at most with the 1/sqrt(fan-in) schemes."
            )
        else:
            statements.append(
                "N(0,1) weights did not saturate the GRU more than the scaled schemes here "
                f"({normal.extra['saturated']:.0%} vs {max(saturated):.0%})."
            )
    ranking = _ranking(results)
    if ranking:
        statements.append(
            "Best validation accuracy by initialisation: "
            + ", ".join(f"{result.label} {_fmt(result.best('val_accuracy'))}" for result in ranking)
            + "."
        )
    return table, statements + problems(results)


# ---- loss ------------------------------------------------------------------------------------------


@EXPERIMENTS.register("loss")
def loss_experiment(budget: str, meta: dict) -> Experiment:
    epochs = BUDGET_EPOCHS[budget]
    # N(0,1) output weights saturate the softmax from the start: where the lecture's argument bites.
    common = ["model.initializer=normal", f"train.epochs={epochs}"]
    cells = [Cell("cross-entropy", ["train.loss=crossentropy", *common]), Cell("MSE", ["train.loss=mse", *common])]
    return Experiment(
        "loss",
        "Loss: cross-entropy vs squared error",
        "On a saturated softmax output, squared error gives vanishing "
        "gradients and learning stalls; cross-entropy's gradient stays proportional to the error.",
        cells,
        summarise_loss,
    )


def summarise_loss(results: list[CellResult]) -> tuple[pd.DataFrame, list[str]]:
    table = _base_table(results)
    table["val accuracy after epoch 1"] = [
        float(result.history["val_accuracy"].iloc[0]) if result.usable else float("nan") for result in results
    ]
    by_label = {result.label: result for result in results}
    statements = []
    entropy, squared = by_label.get("cross-entropy"), by_label.get("MSE")
    if entropy and squared and entropy.usable and squared.usable:
        difference = entropy.best("val_accuracy") - squared.best("val_accuracy")
        if difference > CLEAR_MARGIN:
            statements.append(
                "From the same saturated start, cross-entropy reached a best validation accuracy of "
                f"{_fmt(entropy.best('val_accuracy'))} "
                f"and squared error {_fmt(squared.best('val_accuracy'))} in {len(squared.history)} epochs: squared "
                "error learned less."
            )
        elif difference < -CLEAR_MARGIN:
            statements.append(
                f"Here squared error did better ({_fmt(squared.best('val_accuracy'))} vs "
                f"{_fmt(entropy.best('val_accuracy'))}): this run does not show the claim."
            )
        else:
            statements.append(
                f"Both losses reached about the same validation accuracy ({_fmt(entropy.best('val_accuracy'))} vs "
                f"{_fmt(squared.best('val_accuracy'))}): "
                "this run does not show a stall."
            )
    return table, statements + problems(results)


# ---- optimizers ------------------------------------------------------------------------------------

OPTIMIZER_CELLS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
ADAPTIVE = ("adagrad", "rmsprop", "adam")


@EXPERIMENTS.register("optimizers")
def optimizers_experiment(budget: str, meta: dict) -> Experiment:
    epochs = BUDGET_EPOCHS[budget]
    cells = [
        Cell(name, [f"optimizer.name={name}", "optimizer.learning_rate=0.01", f"train.epochs={epochs}"])
        for name in OPTIMIZER_CELLS
    ]
    return Experiment(
        "optimizers",
        "Optimizers",
        "Momentum and Nesterov speed plain SGD up along consistent directions; Adagrad, "
        "RMSprop and Adam adapt the step per parameter.",
        cells,
        summarise_optimizers,
    )


def summarise_optimizers(results: list[CellResult]) -> tuple[pd.DataFrame, list[str]]:
    table = _base_table(results)
    table["val loss after epoch 1"] = [
        float(result.history["val_loss"].iloc[0]) if result.usable else float("nan") for result in results
    ]
    statements = []
    ranking = _ranking(results)
    if ranking:
        statements.append(
            f"At the same rate (0.01) and budget, the best validation accuracy was {ranking[0].label}'s "
            f"({_fmt(ranking[0].best('val_accuracy'))}), "
            f"the lowest {ranking[-1].label}'s ({_fmt(ranking[-1].best('val_accuracy'))})."
        )
    by_label = {result.label: result for result in results if result.usable}
    if "sgd" in by_label and "momentum" in by_label:
        gain = by_label["momentum"].best("val_accuracy") - by_label["sgd"].best("val_accuracy")
        verb = "improved on" if gain > CLEAR_MARGIN else "did worse than" if gain < -CLEAR_MARGIN else "matched"
        statements.append(
            f"Momentum {verb} plain SGD ({_fmt(by_label['momentum'].best('val_accuracy'))} vs "
            f"{_fmt(by_label['sgd'].best('val_accuracy'))})."
        )
    adaptive = [by_label[name].best("val_accuracy") for name in ADAPTIVE if name in by_label]
    plain = [by_label[name].best("val_accuracy") for name in ("sgd", "momentum", "nesterov") if name in by_label]
    if adaptive and plain:
        difference = np.mean(adaptive) - np.mean(plain)
        relation = (
            "above" if difference > CLEAR_MARGIN else "below" if difference < -CLEAR_MARGIN else "about level with"
        )
        statements.append(
            f"The adaptive methods' mean best validation accuracy ({np.mean(adaptive):.3f}) was {relation} the SGD "
            f"family's ({np.mean(plain):.3f})."
        )
    return table, statements + problems(results)


# ---- schedules -------------------------------------------------------------------------------------


@EXPERIMENTS.register("schedules")
def schedules_experiment(budget: str, meta: dict) -> Experiment:
    epochs = BUDGET_EPOCHS[budget]
    common = ["optimizer.name=momentum", "optimizer.learning_rate=0.03", f"train.epochs={epochs}"]
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
        "Lowering the rate over training (step, exponential, 1/t, linear) lets "
        "SGD settle into a minimum that a constant rate keeps overshooting.",
        cells,
        summarise_schedules,
        "learning_rate",
    )


def summarise_schedules(results: list[CellResult]) -> tuple[pd.DataFrame, list[str]]:
    table = _base_table(results)
    table["rate at first epoch"] = [
        result.history["learning_rate"].iloc[0] if result.usable else float("nan") for result in results
    ]
    table["rate at last epoch"] = [
        result.history["learning_rate"].iloc[-1] if result.usable else float("nan") for result in results
    ]
    by_label = {result.label: result for result in results if result.usable}
    statements = []
    annealed = [result for label, result in by_label.items() if label != "constant"]
    if annealed:
        statements.append(
            "The rate fell from 0.03 to "
            + ", ".join(f"{result.history['learning_rate'].iloc[-1]:.2g} ({result.label})" for result in annealed)
            + " at the last epoch."
        )
    if "constant" in by_label and annealed:
        constant = by_label["constant"].last("val_loss")
        better = [result for result in annealed if result.last("val_loss") < constant]
        lowest = min(annealed, key=lambda result: result.last("val_loss"))
        if better:
            statements.append(
                f"{len(better)} of {len(annealed)} annealed runs ended with a lower validation loss than the "
                "constant rate "
                f"({_fmt(constant)}); the lowest was {lowest.label} ({_fmt(lowest.last('val_loss'))})."
            )
        else:
            statements.append(
                f"No annealed run ended below the constant rate's validation loss ({_fmt(constant)}) here: this "
                "budget does not show the benefit."
            )
    return table, statements + problems(results)


# ---- regularisation --------------------------------------------------------------------------------


@EXPERIMENTS.register("regularization")
def regularization_experiment(budget: str, meta: dict) -> Experiment:
    epochs = BUDGET_EPOCHS[budget] + 2
    # A wider model than the other experiments, so that there is a gap to shrink.
    common = ["model.units=64", "model.dense_units=64", f"train.epochs={epochs}"]
    cells = [
        Cell("none", common),
        Cell("L2 1e-3", ["regularization.l2=0.001", *common]),
        Cell("dropout 0.5", ["model.dropout=0.5", *common]),
        Cell("batch norm", ["model.batch_norm=true", *common]),
        Cell(
            "early stopping",
            [
                "early_stopping.patience=2",
                "early_stopping.restore_best=true",
                "early_stopping.monitor=val_loss",
                *common,
            ],
        ),
    ]
    return Experiment(
        "regularization",
        "Regularisation",
        "L2, dropout, batch normalisation and early stopping shrink the gap "
        "between training and validation performance.",
        cells,
        summarise_regularization,
        "gap",
    )


def kept_gap(result: CellResult) -> float:
    """Training minus validation accuracy at the epoch whose model the run keeps (the best epoch
    with early stopping, the last one otherwise)."""
    if not result.usable:
        return float("nan")
    epoch = result.provenance.best_epoch or len(result.history)
    row = result.history.iloc[min(epoch, len(result.history)) - 1]
    return float(row["accuracy"] - row["val_accuracy"])


def summarise_regularization(results: list[CellResult]) -> tuple[pd.DataFrame, list[str]]:
    table = _base_table(results)
    table["kept epoch"] = [result.provenance.best_epoch for result in results]
    table["train - val accuracy (kept epoch)"] = [kept_gap(result) for result in results]
    statements = []
    by_label = {result.label: result for result in results if result.usable}
    if "none" in by_label:
        baseline = kept_gap(by_label["none"])
        others = [(label, kept_gap(result)) for label, result in by_label.items() if label != "none"]
        shrank = [f"{label} ({gap:+.3f})" for label, gap in others if gap < baseline - CLEAR_MARGIN / 2]
        kept = [f"{label} ({gap:+.3f})" for label, gap in others if gap >= baseline - CLEAR_MARGIN / 2]
        statements.append(
            f"Without regularisation the training accuracy exceeded the validation accuracy by {baseline:+.3f} at "
            "the kept epoch."
        )
        if shrank:
            statements.append("Shrank that gap: " + ", ".join(shrank) + ".")
        if kept:
            statements.append("Did not shrink it in this run: " + ", ".join(kept) + ".")
    return table, statements + problems(results)


# ---- batch size ------------------------------------------------------------------------------------


@EXPERIMENTS.register("batch-size")
def batch_size_experiment(budget: str, meta: dict) -> Experiment:
    epochs = BUDGET_EPOCHS[budget]
    samples = meta.split_size("train")
    # About the same compute for each: one epoch of single-example updates costs about as much as
    # several epochs of mini-batches; full batch gets more epochs, as each is a single update.
    cells = [
        Cell("one example", ["train.batch_size=1", "train.epochs=1", "optimizer.learning_rate=0.0003"]),
        Cell("mini-batch 64", ["train.batch_size=64", f"train.epochs={epochs}"]),
        Cell(f"full batch {samples}", [f"train.batch_size={samples}", f"train.epochs={3 * epochs}"]),
    ]
    return Experiment(
        "batch-size",
        "Batch size",
        "Mini-batches make more progress per second of compute than both full-batch "
        "gradient descent and single-example updates.",
        cells,
        summarise_batch_size,
        "seconds",
    )


def best_loss_within(result: CellResult, seconds: float) -> float:
    """The lowest validation loss among the epochs finished within `seconds` of training."""
    if not result.usable or not result.epoch_seconds:
        return float("nan")
    finished = int((np.cumsum(result.epoch_seconds) <= seconds * 1.0001).sum())
    return float(result.history["val_loss"].iloc[:finished].min()) if finished else float("nan")


def summarise_batch_size(results: list[CellResult]) -> tuple[pd.DataFrame, list[str]]:
    table = _base_table(results)
    table["training seconds"] = [
        sum(result.epoch_seconds) if result.epoch_seconds else float("nan") for result in results
    ]
    usable = [result for result in results if result.usable and result.epoch_seconds]
    statements = []
    if len(usable) == len(results) == 3:
        # Compared when every run has been evaluated at least once: the slowest first epoch's end.
        budget = max(result.epoch_seconds[0] for result in usable)
        losses = {result.label: best_loss_within(result, budget) for result in usable}
        table[f"lowest val loss within {budget:.0f} s"] = [losses.get(result.label, float("nan")) for result in results]
        winner = min(losses, key=losses.get)
        listing = ", ".join(f"{label} {_fmt(loss)}" for label, loss in losses.items())
        if winner.startswith("mini-batch"):
            statements.append(
                f"Within the first {budget:.0f} s of training (when every run had been evaluated once), the "
                "mini-batch run "
                f"reached the lowest validation loss ({listing})."
            )
        else:
            statements.append(
                f"Within the first {budget:.0f} s of training, {winner} reached the lowest validation loss "
                f"({listing}): this run "
                "does not show mini-batches ahead."
            )
    return table, statements + problems(results)
