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


def dense_weight_options(params, weights: dict) -> dict:
    """The dense layer's arguments: `weights`, with model.dense_initializer's kernel initializer when it names one
    (symmetric draws as model.initializer does; `make_units_symmetric` then ties the units)."""
    if params.dense_initializer in (None, "symmetric"):
        return weights
    return {**weights, "kernel_initializer": initializer(params.dense_initializer)}


def make_units_symmetric(dense, head) -> None:
    """Every unit of the built `dense` layer gets the first unit's incoming weights and bias, and the first
    unit's outgoing weights in `head`: the units are interchangeable, so their gradients are equal."""
    import numpy as np

    kernel, bias = (np.asarray(weight) for weight in dense.get_weights()[:2])
    dense.kernel.assign(np.repeat(kernel[:, :1], kernel.shape[1], axis=1))
    dense.bias.assign(np.full_like(bias, bias[0]))
    outgoing = np.asarray(head.kernel)
    head.kernel.assign(np.repeat(outgoing[:1], outgoing.shape[0], axis=0))


def with_standardisation(model, mean, std):
    """`model` behind a Normalization layer with the training set's statistics, so that it takes raw
    inputs. It computes in float32 under mixed precision too: float16 cannot tell 1013.30 from 1013.25
    (a pressure in hPa, say), so (x - mean) / std would come out 0 instead of 1."""
    import keras
    import numpy as np

    inputs = keras.Input(shape=model.input_shape[1:], name="raw_signals")
    layer = keras.layers.Normalization(
        axis=-1, mean=np.asarray(mean), variance=np.square(np.asarray(std)), name="standardize", dtype="float32"
    )
    return keras.Model(inputs, model(layer(inputs)), name=model.name)


def activation_layer(name: str, label: str):
    from keras import layers

    return (
        layers.LeakyReLU(negative_slope=0.1, name=label)
        if name == "leaky_relu"
        else layers.Activation(name, name=label)
    )


def signal_input(input_shape, params):
    """(the model's input of signal windows, the tensor the network starts from): the input itself, or it
    with model.input_noise's Gaussian noise (training only)."""
    import keras

    inputs = keras.Input(shape=tuple(input_shape), name="signals")
    if not params.input_noise:
        return inputs, inputs
    return inputs, keras.layers.GaussianNoise(params.input_noise, name="input_noise")(inputs)


def convolution_1d(hidden, filters: int, kernel: int, params, weights, label: str, activate: bool = True):
    """Conv1D ("same" padding), batch norm when the model has it, then the activation unless `activate` is
    False (a residual block activates after its sum)."""
    from keras import layers

    hidden = layers.Conv1D(filters, kernel, padding="same", use_bias=not params.batch_norm, name=label, **weights)(
        hidden
    )
    if params.batch_norm:
        # momentum 0.9, not Keras's 0.99, as in the image CNN: few steps per epoch on a small set.
        hidden = layers.BatchNormalization(momentum=0.9, name=f"{label}_batch_norm")(hidden)
    return activation_layer(params.activation, f"{label}_{params.activation}")(hidden) if activate else hidden


def classifier_head(hidden, num_classes: int, params, weights):
    """An optional dense layer, dropout, then a softmax over the classes or one regressed value (float32
    even under mixed precision, so the loss is computed in full precision)."""
    from keras import layers

    dense = (
        layers.Dense(params.dense_units, name="dense", **dense_weight_options(params, weights))
        if params.dense_units
        else None
    )
    if dense is not None:
        if params.dropout > 0:
            hidden = layers.Dropout(params.dropout, name="dense_dropout")(hidden)
        hidden = activation_layer(params.activation, f"dense_{params.activation}")(dense(hidden))
    if params.dropout > 0:
        hidden = layers.Dropout(params.dropout, name="head_dropout")(hidden)
    if params.head == "regression":
        head = layers.Dense(1, name="grade", dtype="float32", **weights)
    else:
        head = layers.Dense(num_classes, activation="softmax", name="class_probabilities", dtype="float32", **weights)
    outputs = head(hidden)
    if dense is not None and params.dense_initializer == "symmetric":
        make_units_symmetric(dense, head)
    return outputs
