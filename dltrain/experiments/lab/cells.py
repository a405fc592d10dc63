"""A lab cell (one setting, trained once per seed), what its runs gave, and the one rule that decides
when a difference between two cells counts as shown."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SEEDS = (1, 2, 3)  # train.seed of every compared cell
SELECTION_SEED = 0  # train.seed of the runs that only choose a setting (never among the compared runs)
SHOWN_LEVEL = 0.05  # two-sided: under no difference, about 1 comparison in 20 is called shown
SHOWN_RULE = (
    f"a difference between two cells counts as shown only when Welch's t-test (unequal variances, "
    f"Welch-Satterthwaite degrees of freedom, two-sided) gives p < {SHOWN_LEVEL} over their seeds (at least 2 on "
    "each side); a larger p is reported as within the seed-to-seed noise, and a cell whose seeds all scored the "
    "same is marked saturated (its ± 0 is a metric at a ceiling or floor, not certainty) and separates from nothing "
    "by this test"
)


@dataclass
class Cell:
    label: str
    overrides: list[str]
    seeds: tuple[int, ...] = SEEDS
    facts: dict = field(default_factory=dict)  # known before training (a rate chosen on validation), for the report


@dataclass
class SeedRun:
    """One run of a cell: its history (None: it failed before its first epoch), provenance and what the lab
    measured on it (`extra`)."""

    seed: int
    run_dir: Path
    history: pd.DataFrame | None
    provenance: object
    failure: str | None = None
    epoch_seconds: list[float] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    config: object = None  # the resolved config the run trains with

    @property
    def usable(self) -> bool:
        return self.history is not None and not self.history.empty

    @property
    def problem(self) -> str | None:
        """What went wrong in this run, in words, or None."""
        if self.failure:
            return f"failed: {self.failure}"
        diverged = getattr(self.provenance, "diverged_at", None)
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


@dataclass(frozen=True)
class Score:
    """A measure over a cell's seeds: the finite values, their mean and standard deviation."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values) -> Score:
        return cls(tuple(float(value) for value in values if value is not None and math.isfinite(value)))

    @property
    def count(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else float("nan")

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if self.count > 1 else float("nan")

    @property
    def saturated(self) -> bool:
        """Every seed scored the same: a metric at its ceiling (or floor), whose spread says nothing."""
        return self.count > 1 and max(self.values) == min(self.values)

    def text(self, digits: int = 3) -> str:
        if not self.values:
            return "n/a"
        if self.count == 1:
            return f"{self.mean:.{digits}f} (1 seed)"
        spread = f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"
        return f"{spread}, saturated: every seed the same" if self.saturated else spread


def welch(first: Score, second: Score) -> tuple[float, float, float] | None:
    """(t, degrees of freedom, two-sided p) of Welch's t-test on the two cells' seeds; None with fewer than 2
    seeds on a side, or no spread on either (the test is undefined)."""
    from scipy import stats

    if first.count < 2 or second.count < 2 or (first.saturated and second.saturated):
        return None
    spreads = [0.0 if score.saturated else score.std**2 / score.count for score in (first, second)]
    freedom = sum(spreads) ** 2 / (spreads[0] ** 2 / (first.count - 1) + spreads[1] ** 2 / (second.count - 1))
    statistic = (first.mean - second.mean) / math.sqrt(sum(spreads))
    return statistic, freedom, float(2 * stats.t.sf(abs(statistic), freedom))  # as scipy's ttest_ind(equal_var=False)


def shown(first: Score, second: Score) -> bool:
    """THE rule (SHOWN_RULE): Welch's t-test, p < SHOWN_LEVEL."""
    test = welch(first, second)
    return test is not None and test[2] < SHOWN_LEVEL


def direction(first: Score, second: Score) -> int:
    """+1 when `first` is shown above `second`, -1 when shown below, 0 when the rule does not separate them."""
    if not shown(first, second):
        return 0
    return 1 if first.mean > second.mean else -1


def difference_text(first: Score, second: Score) -> str:
    """`difference +0.023, Welch t 3.41 on 3.9 df, p 0.028`: the numbers the rule read."""
    test = welch(first, second)
    if test is None:
        why = "fewer than 2 seeds" if min(first.count, second.count) < 2 else "no spread in either cell"
        return f"difference {first.mean - second.mean:+.3f}, no Welch test ({why})"
    statistic, freedom, p_value = test
    return f"difference {first.mean - second.mean:+.3f}, Welch t {statistic:.2f} on {freedom:.1f} df, p {p_value:.3f}"


@dataclass
class CellResult:
    label: str
    runs: list[SeedRun]
    facts: dict = field(default_factory=dict)

    @property
    def usable_runs(self) -> list[SeedRun]:
        return [run for run in self.runs if run.usable]

    @property
    def usable(self) -> bool:
        return bool(self.usable_runs)

    def score(self, measure: Callable[[SeedRun], float | None]) -> Score:
        return Score.of(measure(run) for run in self.usable_runs)

    def extra_score(self, key: str) -> Score:
        """A lab measurement over the seeds that have it (one made before training covers failed runs too)."""
        return Score.of(run.extra.get(key) for run in self.runs)

    @property
    def problems(self) -> list[str]:
        return [f"seed {run.seed} {run.problem}" for run in self.runs if run.problem]

    @property
    def status(self) -> str:
        failed = [run for run in self.runs if run.problem]
        return f"{len(failed)} of {len(self.runs)} runs failed or diverged (see below)" if failed else "ok"


def best_val_accuracy(run: SeedRun) -> float:
    return run.best("val_accuracy")


def final_val_loss(run: SeedRun) -> float:
    return run.last("val_loss")


def final_train_loss(run: SeedRun) -> float:
    return run.last("loss")


def epochs_trained(run: SeedRun) -> float:
    return float(len(run.history)) if run.usable else float("nan")


def training_seconds(run: SeedRun) -> float:
    return float(sum(run.epoch_seconds)) if run.epoch_seconds else float("nan")
