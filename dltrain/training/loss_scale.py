"""Mixed precision's loss scaling, with the skip of an overflowing step decided over every replica.

Keras's LossScaleOptimizer decides whether a step's gradients are finite on the first replica alone,
expecting them all-reduced already; on TensorFlow they are not yet (the inner optimizer all-reduces
them), so a step that overflowed on another replica was applied and left NaN weights (seen here:
mixed precision under `mirrored`, one step of 7 images a replica). Here every replica's verdict is
all-reduced first: a step is skipped when any replica overflowed.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="dltrain")
class ReplicaLossScaleOptimizer(keras.optimizers.LossScaleOptimizer):
    def check_finite(self, grads):
        finite = super().check_finite(grads)
        if keras.backend.backend() != "tensorflow":  # JAX computes on global arrays: one verdict already
            return finite
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return finite
        finite_replicas = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(finite, tf.float32))
        return finite_replicas > context.num_replicas_in_sync - 0.5  # all of them


def scaled_for(optimizer, precision: str):
    """`optimizer` as mixed precision needs it (loss-scaled), or as it is under float32."""
    return ReplicaLossScaleOptimizer(optimizer) if precision == "mixed_float16" else optimizer
