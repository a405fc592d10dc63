"""Quadratic weighted kappa and the regression head's thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from dltrain.tasks.retina.grading import apply_thresholds, quadratic_kappa, tune_thresholds


def test_kappa_keeps_all_five_grades():
    from sklearn.metrics import cohen_kappa_score

    # Over the grades present alone (0, 1, 4 as 0, 1, 2: what scikit-learn does without `labels`),
    # the distance from 1 to 4 would weigh 1 instead of 9.
    levels, predicted = [0, 1, 4, 4, 1], [1, 1, 4, 0, 0]
    assert cohen_kappa_score(levels, predicted, weights="quadratic") == pytest.approx(0.0625)
    assert quadratic_kappa(levels, predicted) == pytest.approx(5 / 14)
    assert quadratic_kappa([0, 1, 2, 3, 4], [0, 1, 2, 3, 4]) == 1.0
    assert quadratic_kappa([0, 4, 0, 4], [4, 0, 4, 0]) < 0


@pytest.mark.parametrize("seed", range(4))
def test_kappa_is_scikit_learns_with_the_five_grades_as_labels(seed):
    """The numpy kappa (threshold tuning calls it about 1,200 times a run) against scikit-learn's."""
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(seed)
    for size in (1, 2, 7, 50, 400):
        levels = rng.integers(0, 5, size)
        for predicted in (rng.integers(0, 5, size), np.clip(levels + rng.integers(-1, 2, size), 0, 4), levels):
            expected = cohen_kappa_score(levels, predicted, weights="quadratic", labels=[0, 1, 2, 3, 4])
            measured = quadratic_kappa(levels, predicted)
            assert (np.isnan(expected) and np.isnan(measured)) or measured == pytest.approx(expected, abs=1e-12)


def test_default_thresholds_round_to_the_nearest_grade():
    assert apply_thresholds([-1.0, 0.49, 0.51, 1.7, 2.5, 3.49, 3.6, 9.0]).tolist() == [0, 0, 1, 2, 3, 3, 4, 4]


def test_tuned_thresholds_fix_a_biased_regressor():
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 5, size=400)
    values = 0.7 * levels + 0.3 + rng.normal(0, 0.15, size=400)  # compressed and shifted outputs
    before = quadratic_kappa(levels, apply_thresholds(values))
    thresholds = tune_thresholds(values, levels)
    after = quadratic_kappa(levels, apply_thresholds(values, thresholds))
    assert after > before + 0.05 and after > 0.95
    assert thresholds == sorted(thresholds)


def test_a_split_of_one_grade_scores_a_nan_kappa_that_is_written_and_read_back(tmp_path):
    """Every label and prediction the same grade: no disagreement to expect, kappa is NaN (sklearn),
    and metrics-<split>.json still takes it."""
    from dltrain.runs.metrics import read_split_metrics, write_split_metrics
    from dltrain.tasks.classification import classification_metrics

    truth = predicted = np.zeros(6, int)
    metrics = classification_metrics(truth, predicted, ["0", "1", "2", "3", "4"])
    with pytest.warns(UserWarning, match="undefined"):  # sklearn says so, and returns NaN
        metrics.update(quadratic_weighted_kappa=quadratic_kappa(truth, predicted), split="val", data_dir="d")
    assert np.isnan(metrics["quadratic_weighted_kappa"])
    write_split_metrics(tmp_path, metrics)
    assert np.isnan(read_split_metrics(tmp_path, "val").quadratic_weighted_kappa)
