"""Metrics every classification task reports (scikit-learn): accuracy, macro F1, per class, confusion matrix."""

from __future__ import annotations

import numpy as np


def classification_metrics(truth: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    # Passing `labels` keeps every class in the scores even when a split lacks some of them.
    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    matrix = confusion_matrix(truth, predicted, labels=labels)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
        "classes": list(classes),
        "confusion_matrix": matrix.tolist(),
        "most_confused": most_confused(matrix, classes),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(classes, precision, recall, f1, support)
        },
        "count": int(len(truth)),
    }


def most_confused(matrix: np.ndarray, classes: list[str], top: int = 5) -> list[dict]:
    """The `top` commonest mistakes (true class read as another), most frequent first, with the share
    of the true class's samples each one takes (as fastai's `most_confused`, with shares)."""
    totals = matrix.sum(axis=1)
    pairs = sorted(
        ((int(count), true, predicted) for (true, predicted), count in np.ndenumerate(matrix) if true != predicted),
        key=lambda pair: (-pair[0], pair[1], pair[2]),
    )
    return [
        {
            "true": classes[true],
            "predicted": classes[predicted],
            "count": count,
            "share_of_true": round(count / int(totals[true]), 4),
        }
        for count, true, predicted in pairs[:top]
        if count > 0
    ]


def crossentropy_or_mse(config):
    """Loss and metrics of a softmax head: sparse cross-entropy on class indices, or with one-hot
    targets (label smoothing, or the lecture's squared error on the probabilities)."""
    import keras

    accuracy = keras.metrics.CategoricalAccuracy(name="accuracy")
    # The softmax output keeps its logits, and Keras's TensorFlow cross-entropy reads them from
    # there: the loss is log-softmax of the logits, stable for any logit size.
    if config.train.loss == "mse":
        return keras.losses.MeanSquaredError(), [accuracy]
    if config.train.label_smoothing:
        return keras.losses.CategoricalCrossentropy(label_smoothing=config.train.label_smoothing), [accuracy]
    return "sparse_categorical_crossentropy", ["accuracy"]
