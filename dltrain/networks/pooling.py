"""Global pooling choices of the CNN: average, max, both side by side, or a learned generalised mean
(a registered layer, so models holding it load with safe_mode)."""

from __future__ import annotations

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="dltrain")
class GeneralisedMeanPooling2D(keras.layers.Layer):
    """(mean of x^p)^(1/p) over height and width, p learned from `initial_p` (3, as Radenovic et al.):
    p = 1 is average pooling, p = 2 o_O's RMS pooling, and a large p approaches max pooling. Computed in
    float32 (x^p overflows float16 from x = 40 at p = 3) with p kept in [1, MAX_P]."""

    MAX_P = 8.0

    def __init__(self, initial_p: float = 3.0, **kwargs):
        super().__init__(**kwargs)
        self.initial_p = initial_p

    def build(self, input_shape):
        self.p = self.add_weight(shape=(), initializer=keras.initializers.Constant(self.initial_p), name="p")

    def call(self, inputs):
        ops = keras.ops
        p = ops.clip(ops.cast(self.p, inputs.dtype), 1.0, self.MAX_P)
        pooled = ops.mean(ops.power(ops.maximum(inputs, 1e-6), p), axis=(1, 2))
        return ops.power(pooled, 1.0 / p)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "initial_p": self.initial_p}


def global_pooling(name: str):
    """The last feature map to one vector, as model.pooling names it: a function of the tensor."""
    if name == "flatten":
        return layers.Flatten(name="flatten")
    if name == "global_average":
        return layers.GlobalAveragePooling2D(name="global_average")
    if name == "global_max":
        return layers.GlobalMaxPooling2D(name="global_max")
    if name == "gem":
        return GeneralisedMeanPooling2D(name="global_gem", dtype="float32")  # float32 under mixed precision too

    def average_and_max(hidden):  # both views side by side (JeffreyDF pooled both ways)
        average = layers.GlobalAveragePooling2D(name="global_average")(hidden)
        largest = layers.GlobalMaxPooling2D(name="global_max")(hidden)
        return layers.Concatenate(name="average_max")([average, largest])

    return average_and_max
