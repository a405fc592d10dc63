"""What the lab looks inside a model for, on one batch before training: per-layer activation
statistics and gradient norms, the gradients of the dense layer's units, how saturated the softmax
is; and after training, whether the dense layer's units are all alike and what they did."""

from __future__ import annotations

import re

import numpy as np

PROBE_SAMPLES = 256
SATURATED = 0.99  # |tanh| or sigmoid-distance above this: the unit's gradient is almost gone
IDENTICAL_TOLERANCE = 1e-6


def core_model(model):
    """The builder's model inside the wrappers a task puts around it (activity models: the standardisation,
    and the signals' augmentation outside that), else the model."""
    import keras

    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return core_model(inner[0]) if inner else model


def probed_layers(core) -> list[str]:
    """The outputs worth watching, in order: each convolution block's activation, each GRU, the
    dense layer's activation (see the builders' layer names)."""
    pattern = re.compile(r"^(conv_(?!batch_norm_)[a-z_]+_\d+|gru_\d+|bidirectional_\d+|dense_[a-z_]+)$")
    return [layer.name for layer in core.layers if pattern.match(layer.name)]


def weight_layer(name: str) -> str:
    """The layer holding the kernel behind a probed output: conv_relu_2 -> conv_2, dense_relu -> dense."""
    if name.startswith("conv_") and not name[len("conv_") :].isdigit():
        return f"conv_{name.rsplit('_', 1)[1]}"
    if name.startswith("dense_"):
        return "dense"
    return name


def initial_statistics(model, inputs: np.ndarray, targets: np.ndarray, loss) -> tuple[list[dict], dict]:
    """For each probed layer: mean and standard deviation of its output, the share of saturated
    outputs (GRU: |h| > 0.99), and the norm of the loss gradient of its kernel, on one batch; and the
    kernel gradients by layer name."""
    import keras
    import tensorflow as tf

    core = core_model(model)
    names = probed_layers(core)
    probe = keras.Model(core.inputs, [core.get_layer(name).output for name in names] + [core.outputs[0]])
    x = tf.constant(inputs[:PROBE_SAMPLES])
    with tf.GradientTape() as tape:
        *outputs, probabilities = probe(standardised(model, x), training=False)
        value = (
            keras.losses.get(loss)(tf.constant(targets[:PROBE_SAMPLES]), probabilities)
            if isinstance(loss, str)
            else loss(tf.constant(targets[:PROBE_SAMPLES]), probabilities)
        )
        value = tf.reduce_mean(value)
    layers = [weight_layer(name) for name in names]
    variables = [core.get_layer(layer).trainable_weights[0] for layer in layers]
    gradients = {
        layer: None if gradient is None else np.asarray(gradient)
        for layer, gradient in zip(layers, tape.gradient(value, variables))
    }
    rows = [
        layer_row(name, np.asarray(output), gradients[layer]) for name, output, layer in zip(names, outputs, layers)
    ]
    return rows, gradients


def standardised(model, x):
    """The inputs as the core model sees them (activity models standardise in a wrapper first; the
    augmentation outside it does nothing outside training)."""
    import keras

    while core_model(model) is not model:
        names = [layer.name for layer in model.layers]
        if "standardize" in names:
            return model.get_layer("standardize")(x)
        model = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    return x


def layer_row(name: str, values: np.ndarray, gradient: np.ndarray | None) -> dict:
    return {
        "layer": name,
        "mean": float(values.mean()),
        "std": float(values.std()),
        "saturated": float((np.abs(values) > SATURATED).mean())
        if name.startswith(("gru_", "bidirectional_"))
        else None,
        "gradient_norm": float(np.linalg.norm(gradient)) if gradient is not None else None,
    }


def unit_gradients(gradient: np.ndarray) -> dict:
    """Of a dense kernel's gradient (inputs x units): each unit's gradient norm, their mean and spread (largest
    minus smallest), and the largest difference between any unit's gradient and the first unit's."""
    norms = np.linalg.norm(gradient, axis=0)
    return {
        "unit_gradient_mean": float(norms.mean()),
        "unit_gradient_norm_spread": float(norms.max() - norms.min()),
        "unit_gradient_difference": float(np.abs(gradient - gradient[:, :1]).max()),
    }


def output_statistics(model, inputs: np.ndarray, labels: np.ndarray, loss_name: str) -> dict:
    """On one batch: the share of windows whose largest softmax probability exceeds 0.99, the mean largest
    probability, and the norm of the gradient of the loss (`crossentropy` or `mse`, from the logits as
    training computes it) with respect to the output layer's kernel."""
    import keras
    import tensorflow as tf

    core = core_model(model)
    head = core.get_layer("class_probabilities")
    features = keras.Model(core.inputs, head.input)(standardised(model, tf.constant(inputs[:PROBE_SAMPLES])))
    kernel = head.kernel.value
    onehot = tf.one_hot(labels[:PROBE_SAMPLES], head.units)
    with tf.GradientTape() as tape:
        tape.watch(kernel)
        logits = tf.matmul(features, kernel) + head.bias.value
        probabilities = tf.nn.softmax(logits)
        if loss_name == "mse":
            value = tf.reduce_mean(tf.square(probabilities - onehot))
        else:
            value = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(onehot, logits))
    largest = np.asarray(probabilities).max(axis=1)
    return {
        "softmax_saturated": float((largest > SATURATED).mean()),
        "largest_probability": float(largest.mean()),
        "output_gradient_norm": float(np.linalg.norm(np.asarray(tape.gradient(value, kernel)))),
        "probe_windows": len(largest),
    }


def unit_spread(model, layer_name: str = "dense") -> float | None:
    """The largest difference between any unit's incoming weights (and bias) and the first unit's,
    in `layer_name`; 0 means every unit computes the same function. None if there is no such layer."""
    core = core_model(model)
    try:
        layer = core.get_layer(layer_name)
    except ValueError:
        return None
    kernel, bias = (np.asarray(weight) for weight in layer.get_weights()[:2])
    return float(max(np.abs(kernel - kernel[:, :1]).max(), np.abs(bias - bias[0]).max()))


def units_identical(spread: float | None) -> bool:
    return spread is not None and spread <= IDENTICAL_TOLERANCE


def unit_activity(model, inputs: np.ndarray, labels: np.ndarray) -> dict:
    """After training, on (up to PROBE_SAMPLES) validation windows: the share of the dense layer's outputs
    that are 0 (silent ReLU units), how much its first unit's output varies across the windows, the share of
    the windows given the most frequent answer, and the share of the most frequent true class. Empty if
    the model has no dense layer."""
    import keras

    core = core_model(model)
    names = [name for name in probed_layers(core) if name.startswith("dense_")]
    if not names:
        return {}
    probe = keras.Model(core.inputs, [core.get_layer(names[0]).output, core.outputs[0]])
    activations, probabilities = (
        np.asarray(value) for value in probe(standardised(model, inputs[:PROBE_SAMPLES]), training=False)
    )
    answers = probabilities.argmax(axis=1)
    truth = labels[:PROBE_SAMPLES]
    return {
        "dense_silent": float((activations == 0).mean()),
        "dense_feature_std": float(activations[:, 0].std()),
        "one_answer_share": float(np.bincount(answers).max() / len(answers)),
        "majority_share": float(np.bincount(truth).max() / len(truth)),
    }
