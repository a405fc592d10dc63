"""What every builder shares: initializers, regularizers and activations named in the config."""

from __future__ import annotations


def initializer(name: str, seed: int | None = None):
    """A Keras initializer for one of the config's names; `normal` is the lecture's N(0, 1) and
    `uniform_fan_in` its U(-1/sqrt(m), 1/sqrt(m)) (variance 1/(3m): VarianceScaling scale 1/3)."""
    import keras

    if name == "zeros":
        return keras.initializers.Zeros()
    if name == "normal":
        return keras.initializers.RandomNormal(mean=0.0, stddev=1.0, seed=seed)
    if name == "uniform_fan_in":
        return keras.initializers.VarianceScaling(scale=1 / 3, mode="fan_in", distribution="uniform", seed=seed)
    return keras.initializers.get(name)


def weight_options(params, regularization=None) -> dict:
    """kernel_initializer and kernel_regularizer arguments for Conv, GRU and Dense layers."""
    import keras

    options = {"kernel_initializer": initializer(params.initializer)}
    if regularization is not None and (regularization.l1 or regularization.l2):
        options["kernel_regularizer"] = keras.regularizers.L1L2(l1=regularization.l1, l2=regularization.l2)
    return options


def activation_layer(name: str, label: str):
    from keras import layers

    return (
        layers.LeakyReLU(negative_slope=0.1, name=label)
        if name == "leaky_relu"
        else layers.Activation(name, name=label)
    )


def classifier_head(hidden, num_classes: int, params, weights):
    """An optional dense layer, dropout, then a softmax over the classes or one regressed value (float32
    even under mixed precision, so the loss is computed in full precision)."""
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
