"""The course's retinopathy CNN, generalised: Conv-BN-activation blocks with max pooling, a dense head."""

from __future__ import annotations

from dltrain.networks import MODELS
from dltrain.networks.layers import activation_layer, weight_options


@MODELS.register("cnn")
def build_cnn(input_shape, num_classes, params, regularization=None):
    """Images (uint8 or float in 0-255) -> class probabilities, or one grade value (regression head)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    hidden = layers.Rescaling(1 / 255, name="scale")(inputs)
    if params.input_noise:
        hidden = layers.GaussianNoise(params.input_noise, name="input_noise")(hidden)
    weights = weight_options(params, regularization)
    for block in range(params.conv_layers):
        filters = params.conv_filters * 2**block
        for repeat in (1, 2):  # two convolutions per block, as in the course baseline
            label = f"block{block + 1}_conv{repeat}"
            hidden = layers.Conv2D(
                filters, params.conv_kernel, padding="same", use_bias=not params.batch_norm, name=label, **weights
            )(hidden)
            if params.batch_norm:
                # momentum 0.9, not Keras's 0.99: a small set gives few steps per epoch, and the
                # moving statistics used at inference must catch up within a few epochs.
                hidden = layers.BatchNormalization(momentum=0.9, name=f"{label}_batch_norm")(hidden)
            hidden = activation_layer(params.activation, f"{label}_{params.activation}")(hidden)
        hidden = layers.MaxPooling2D(2, name=f"block{block + 1}_pool")(hidden)
    pooling = (
        layers.GlobalAveragePooling2D(name="global_average")
        if params.pooling == "global_average"
        else layers.Flatten(name="flatten")
    )
    hidden = pooling(hidden)
    if params.dense_units:
        if params.dropout > 0:
            hidden = layers.Dropout(params.dropout, name="dense_dropout")(hidden)
        hidden = layers.Dense(params.dense_units, name="dense", **weights)(hidden)
        hidden = activation_layer(params.activation, f"dense_{params.activation}")(hidden)
    if params.dropout > 0:
        hidden = layers.Dropout(params.dropout, name="head_dropout")(hidden)
    if params.head == "regression":
        outputs = layers.Dense(1, name="grade", dtype="float32", **weights)(hidden)
    else:
        outputs = layers.Dense(
            num_classes, activation="softmax", name="class_probabilities", dtype="float32", **weights
        )(hidden)
    return keras.Model(inputs, outputs, name="cnn")
