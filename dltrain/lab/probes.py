"""What the initialisation experiment looks inside a model for: per-layer activation statistics
and gradient norms on one batch before training, and whether a layer's units are all alike."""

from __future__ import annotations

import re

import numpy as np

PROBE_SAMPLES = 256
SATURATED = 0.99  # |tanh| or sigmoid-distance above this: the unit's gradient is almost gone
IDENTICAL_TOLERANCE = 1e-6


def _core(model):
    """The builder's model inside the standardisation wrapper (activity models), else the model."""
    import keras

    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return inner[0] if inner else model


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


def initial_statistics(model, inputs: np.ndarray, targets: np.ndarray, loss) -> list[dict]:
    """For each probed layer: mean and standard deviation of its output, the share of saturated
    outputs (GRU: |h| > 0.99), and the norm of the loss gradient of its kernel, on one batch."""
    import keras
    import tensorflow as tf

    core = _core(model)
    names = probed_layers(core)
    probe = keras.Model(core.inputs, [core.get_layer(name).output for name in names] + [core.outputs[0]])
    standardise = model.get_layer("standardize") if core is not model else None
    x = tf.constant(inputs[:PROBE_SAMPLES])
    with tf.GradientTape() as tape:
        hidden = standardise(x) if standardise is not None else x
        *outputs, probabilities = probe(hidden, training=False)
        value = (
            keras.losses.get(loss)(tf.constant(targets[:PROBE_SAMPLES]), probabilities)
            if isinstance(loss, str)
            else loss(tf.constant(targets[:PROBE_SAMPLES]), probabilities)
        )
        value = tf.reduce_mean(value)
    variables = [core.get_layer(weight_layer(name)).trainable_weights[0] for name in names]
    gradients = dict(zip([id(variable) for variable in variables], tape.gradient(value, variables)))
    rows = []
    for name, output, variable in zip(names, outputs, variables):
        values = np.asarray(output)
        gradient = gradients.get(id(variable))
        rows.append(
            {
                "layer": name,
                "mean": float(values.mean()),
                "std": float(values.std()),
                "saturated": float((np.abs(values) > SATURATED).mean())
                if name.startswith(("gru_", "bidirectional_"))
                else None,
                "gradient_norm": float(np.linalg.norm(np.asarray(gradient))) if gradient is not None else None,
            }
        )
    return rows


def unit_spread(model, layer_name: str = "dense") -> float | None:
    """The largest difference between any unit's incoming weights (and bias) and the first unit's,
    in `layer_name`; 0 means every unit computes the same function. None if there is no such layer."""
    core = _core(model)
    try:
        layer = core.get_layer(layer_name)
    except ValueError:
        return None
    kernel, bias = (np.asarray(weight) for weight in layer.get_weights()[:2])
    return float(max(np.abs(kernel - kernel[:, :1]).max(), np.abs(bias - bias[0]).max()))


def units_identical(spread: float | None) -> bool:
    return spread is not None and spread <= IDENTICAL_TOLERANCE
