"""Grades from model outputs, and the assignment's metric: quadratic weighted kappa."""

from __future__ import annotations

import numpy as np

from dltrain.tasks.retina.meta import LEVELS

DEFAULT_THRESHOLDS = (0.5, 1.5, 2.5, 3.5)


def quadratic_kappa(levels, predicted) -> float:
    from sklearn.metrics import cohen_kappa_score

    # `labels` keeps all five grades in the weight matrix even when a split lacks some of them.
    return float(cohen_kappa_score(levels, predicted, weights="quadratic", labels=list(LEVELS)))


def apply_thresholds(values: np.ndarray, thresholds=DEFAULT_THRESHOLDS) -> np.ndarray:
    """Regression outputs -> grades 0-4: below the first threshold is 0, above the last is 4."""
    return np.digitize(np.asarray(values, dtype=np.float64).reshape(-1), np.asarray(thresholds))


def tune_thresholds(values: np.ndarray, levels: np.ndarray, passes: int = 3, step: float = 0.02) -> list[float]:
    """Coordinate search from (0.5, 1.5, 2.5, 3.5): each threshold in turn moves within its
    neighbours' bounds to where the validation kappa is highest; ties keep the current value."""
    thresholds = list(DEFAULT_THRESHOLDS)
    best = quadratic_kappa(levels, apply_thresholds(values, thresholds))
    for _ in range(passes):
        for index in range(len(thresholds)):
            low = thresholds[index - 1] + step if index > 0 else -0.5
            high = thresholds[index + 1] - step if index < len(thresholds) - 1 else 4.5
            for candidate in np.arange(low, high + step / 2, step):
                trial = thresholds.copy()
                trial[index] = float(candidate)
                score = quadratic_kappa(levels, apply_thresholds(values, trial))
                if score > best + 1e-12:
                    best, thresholds = score, trial
    return [round(value, 4) for value in thresholds]


def grades_from_outputs(outputs: np.ndarray, head: str, thresholds=DEFAULT_THRESHOLDS) -> np.ndarray:
    if head == "regression":
        return apply_thresholds(outputs, thresholds)
    return np.asarray(outputs).argmax(axis=1)
