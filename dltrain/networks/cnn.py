"""The retinopathy CNN, from the course baseline to the Kaggle winners' shape: an optional strided
stem (JeffreyDF: 7x7/2; o_O: 5x5/2), blocks of convolutions with batch norm and pooling, a global
pooling (average, max, both, or generalised mean), a dense layer and the head."""

from __future__ import annotations

from dltrain.networks import MODELS
from dltrain.networks.layers import activation_layer, weight_options


def block_filters(params) -> list[int]:
    """Filters of each block: model.block_filters as given, else conv_filters doubling every block."""
    return (
        list(params.block_filters)
        if params.block_filters
        else [params.conv_filters * 2**block for block in range(params.conv_layers)]
    )


def _convolution(hidden, filters: int, kernel: int, strides: int, label: str, params, weights):
    from keras import layers

    hidden = layers.Conv2D(
        filters, kernel, strides, padding="same", use_bias=not params.batch_norm, name=label, **weights
    )(hidden)
    if params.batch_norm:
        # momentum 0.9, not Keras's 0.99: a small set gives few steps per epoch, and the
        # moving statistics used at inference must catch up within a few epochs.
        hidden = layers.BatchNormalization(momentum=0.9, name=f"{label}_batch_norm")(hidden)
    return activation_layer(params.activation, f"{label}_{params.activation}")(hidden)


def _head(hidden, num_classes: int, params, weights):
    from keras import layers

    if params.dense_units:
        if params.dropout > 0:
            hidden = layers.Dropout(params.dropout, name="dense_dropout")(hidden)
        hidden = layers.Dense(params.dense_units, name="dense", **weights)(hidden)
        hidden = activation_layer(params.activation, f"dense_{params.activation}")(hidden)
    if params.dropout > 0:
        hidden = layers.Dropout(params.dropout, name="head_dropout")(hidden)
    if params.head == "regression":
        return layers.Dense(1, name="grade", dtype="float32", **weights)(hidden)
    return layers.Dense(num_classes, activation="softmax", name="class_probabilities", dtype="float32", **weights)(
        hidden
    )


@MODELS.register("cnn")
def build_cnn(input_shape, num_classes, params, regularization=None):
    """Images (uint8 or float in 0-255) -> class probabilities, or one grade value (regression head)."""
    import keras
    from keras import layers

    from dltrain.networks.pooling import global_pooling

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    hidden = layers.Rescaling(1 / 255, name="scale")(inputs)
    if params.input_noise:
        hidden = layers.GaussianNoise(params.input_noise, name="input_noise")(hidden)
    weights = weight_options(params, regularization)
    if params.stem_filters:
        hidden = _convolution(
            hidden, params.stem_filters, params.stem_kernel, params.stem_stride, "stem", params, weights
        )
    pool = layers.MaxPooling2D if params.block_pooling == "max" else layers.AveragePooling2D
    for block, filters in enumerate(block_filters(params), start=1):
        for repeat in range(1, params.convs_per_block + 1):
            hidden = _convolution(hidden, filters, params.conv_kernel, 1, f"block{block}_conv{repeat}", params, weights)
        hidden = pool(params.pool_size, strides=2, name=f"block{block}_pool")(hidden)
    hidden = global_pooling(params.pooling)(hidden)
    return keras.Model(inputs, _head(hidden, num_classes, params, weights), name="cnn")
