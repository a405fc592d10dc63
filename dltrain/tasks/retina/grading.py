"""Grades from model outputs, and the assignment's metric: quadratic weighted kappa."""

from __future__ import annotations

import numpy as np

from dltrain.tasks.retina.meta import LEVELS

DEFAULT_THRESHOLDS = (0.5, 1.5, 2.5, 3.5)


def quadratic_kappa(levels, predicted) -> float:
    """Cohen's kappa with quadratic weights over all five grades, as scikit-learn's
    `cohen_kappa_score(..., weights="quadratic", labels=LEVELS)` computes it, in numpy: threshold
    tuning calls it about 1,200 times per run, and scikit-learn's input checks cost a millisecond a call."""
    levels, predicted = np.asarray(levels), np.asarray(predicted)
    if not (_grades(levels) and _grades(predicted) and len(levels) == len(predicted)):
        return _scikit_learn_kappa(levels, predicted)  # its checks, its error messages
    count = len(LEVELS)
    known = np.isin(levels, LEVELS) & np.isin(predicted, LEVELS)  # scikit-learn's `labels` drops the others
    confusion = np.bincount(
        levels[known].astype(np.int64) * count + predicted[known].astype(np.int64), minlength=count * count
    ).reshape(count, count)
    # scikit-learn's arithmetic, in its order (the sums then agree to the last bit)
    sum0, sum1 = confusion.sum(axis=0), confusion.sum(axis=1)
    expected = np.outer(sum0, sum1) / max(np.sum(sum0), 1)
    weights = np.zeros((count, count)) + np.arange(count)
    weights = (weights - weights.T) ** 2
    denominator = np.sum(weights * expected)
    if denominator == 0:
        return _scikit_learn_kappa(levels, predicted)  # undefined (one grade only): its answer and warning
    return float(1 - np.sum(weights * confusion) / denominator)


def _grades(values: np.ndarray) -> bool:
    """One dimension of whole, finite numbers: what the numpy kappa counts the way scikit-learn does."""
    return (
        values.ndim == 1
        and values.dtype.kind in "iuf"
        and bool(np.all(np.isfinite(values) & (values == np.round(values))))
    )


def _scikit_learn_kappa(levels, predicted) -> float:
    from sklearn.metrics import cohen_kappa_score

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
