"""Quadratic weighted kappa as a Keras metric, so that `val_kappa` comes out of Keras's own
validation pass (the validation split is predicted once per epoch, not twice) and works alike on
the TensorFlow and JAX backends (keras.ops only)."""

from __future__ import annotations

import keras
from keras import ops

from dltrain.tasks.retina.grading import DEFAULT_THRESHOLDS
from dltrain.tasks.retina.meta import LEVELS


@keras.saving.register_keras_serializable(package="dltrain")
class QuadraticKappa(keras.metrics.Metric):
    """Accumulates the confusion matrix of grades over the batches; `result()` is Cohen's kappa
    with quadratic weights over all five grades (as `cohen_kappa_score(..., labels=[0..4])`).
    Classification outputs are graded by argmax, regression outputs by `thresholds`; targets may be
    grades or one-hot rows."""

    def __init__(self, head: str = "classification", thresholds=DEFAULT_THRESHOLDS, name: str = "kappa", **kwargs):
        super().__init__(name=name, **kwargs)
        self.head = head
        self.thresholds = [float(value) for value in thresholds]
        self.grades = len(LEVELS)
        self.confusion = self.add_variable(
            shape=(self.grades, self.grades), initializer="zeros", name="confusion", dtype="float32"
        )

    def _grades(self, values, predicted: bool):
        if len(values.shape) == 2 and values.shape[-1] == self.grades:  # probabilities or one-hot targets
            return ops.argmax(values, axis=-1)
        values = ops.reshape(ops.cast(values, "float32"), (-1,))
        if predicted and self.head == "regression":
            return ops.sum(
                ops.cast(ops.expand_dims(values, -1) >= ops.convert_to_tensor(self.thresholds), "int32"), axis=-1
            )
        return ops.clip(ops.cast(ops.round(values), "int32"), 0, self.grades - 1)

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth = ops.one_hot(self._grades(y_true, predicted=False), self.grades)
        predicted = ops.one_hot(self._grades(y_pred, predicted=True), self.grades)
        self.confusion.assign_add(ops.matmul(ops.transpose(truth), predicted))

    def result(self):
        observed = self.confusion
        total = ops.maximum(ops.sum(observed), 1.0)
        expected = ops.outer(ops.sum(observed, axis=1), ops.sum(observed, axis=0)) / total
        levels = ops.arange(self.grades, dtype="float32")
        weights = ops.square(ops.expand_dims(levels, 1) - ops.expand_dims(levels, 0)) / float((self.grades - 1) ** 2)
        disagreement = ops.sum(weights * expected)
        # No spread at all in truth or prediction: kappa is undefined; 0 (chance) keeps monitors finite.
        return ops.where(disagreement > 0, 1.0 - ops.sum(weights * observed) / ops.maximum(disagreement, 1e-12), 0.0)

    def reset_state(self):
        self.confusion.assign(ops.zeros((self.grades, self.grades)))

    def get_config(self):
        return {**super().get_config(), "head": self.head, "thresholds": self.thresholds}
