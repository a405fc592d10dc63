"""Screening for referable retinopathy (grade 2, moderate, or worse), as diabetic-retinopathy screening
studies report a grader (e.g. Gulshan et al., JAMA 2016): the ROC curve of a referable score, its AUC,
and the sensitivity and specificity at the grader's own cut point and at chosen sensitivities."""

from __future__ import annotations

import numpy as np

REFERABLE_GRADE = 2  # moderate non-proliferative retinopathy or worse is referred
TARGET_SENSITIVITIES = (0.90, 0.95)


def referable_score(outputs: np.ndarray) -> np.ndarray:
    """One number per image that grows with the chance of referable disease: a regression head's grade
    value, or a softmax's probability of grade 2 or worse."""
    outputs = np.asarray(outputs, np.float64)
    if outputs.ndim == 2 and outputs.shape[1] > 1:
        return outputs[:, REFERABLE_GRADE:].sum(axis=1)
    return outputs.reshape(-1)


def rates(referable: np.ndarray, referred: np.ndarray) -> tuple[float | None, float | None]:
    """(sensitivity, specificity) of referring `referred` when `referable` is the truth (None without cases)."""
    positives, negatives = referable.sum(), (~referable).sum()
    sensitivity = float((referred & referable).sum() / positives) if positives else None
    specificity = float((~referred & ~referable).sum() / negatives) if negatives else None
    return sensitivity, specificity


def referable_metrics(levels: np.ndarray, grades: np.ndarray, score: np.ndarray, prefix: str = "referable") -> dict:
    """`<prefix>_auc`, `<prefix>_sensitivity` and `<prefix>_specificity` (at the grades given: the tuned
    cut points), and the operating points at 90% and 95% sensitivity with the score each needs.
    AUC and operating points are None where the split lacks referable or non-referable images."""
    from sklearn.metrics import roc_auc_score, roc_curve

    referable = np.asarray(levels) >= REFERABLE_GRADE
    sensitivity, specificity = rates(referable, np.asarray(grades) >= REFERABLE_GRADE)
    metrics = {
        f"{prefix}_sensitivity": sensitivity,
        f"{prefix}_specificity": specificity,
        f"{prefix}_auc": None,
        f"{prefix}_operating_points": [],
    }
    if referable.all() or not referable.any():
        return metrics
    metrics[f"{prefix}_auc"] = float(roc_auc_score(referable, score))
    false_positive, true_positive, cuts = roc_curve(referable, score)
    for target in TARGET_SENSITIVITIES:
        index = int(np.argmax(true_positive >= target - 1e-12))  # the first (strictest) cut that reaches it
        metrics[f"{prefix}_operating_points"].append(
            {
                "target_sensitivity": target,
                "sensitivity": float(true_positive[index]),
                "specificity": float(1 - false_positive[index]),
                "score_at_least": float(min(cuts[index], np.finfo(np.float64).max)),
            }
        )
    return metrics


def roc_points(levels: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) of the referable ROC curve."""
    from sklearn.metrics import roc_curve

    false_positive, true_positive, _ = roc_curve(np.asarray(levels) >= REFERABLE_GRADE, score)
    return false_positive, true_positive
