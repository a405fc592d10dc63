"""What part of an input made the model's output: Grad-CAM over images (Selvaraju et al. 2017; the
keras-io example `vision/grad_cam.py` computes it on the class logit) and gradient saliency over signal
windows.

Both differentiate the score of the model's own answer: a regression head's grade value, or for a
softmax the predicted class's logit against the mean logit, z_c - mean(z), read from the
probabilities as log p_c - mean(log p) (the softmax's normaliser cancels). Unlike p_c or log p_c,
its gradient does not vanish when the softmax is sure. Gradients are taken with TensorFlow's tape:
dltrain's scoring runs on the TensorFlow backend.
"""

from __future__ import annotations

import numpy as np

from dltrain.core.errors import UsageError

GRADIENT_SCALE = 1024.0  # as a mixed-precision loss scale: keeps float16 gradients from underflowing
GRADCAM_BATCH = 8  # photographs per gradient pass: 8 x 512 px feature maps stay well inside a CPU's memory


def gradients_available() -> bool:
    """Whether this process's Keras computes on TensorFlow, whose tape the maps are taken with (a JAX
    run's scoring draws its figures without them)."""
    import keras

    return keras.backend.backend() == "tensorflow"


def require_gradients() -> None:
    if not gradients_available():
        import keras

        raise UsageError(f"Grad-CAM and saliency need the TensorFlow backend (Keras runs on {keras.backend.backend()})")


def feature_map_model(model):
    """A model from `model`'s input to (its last convolutional feature map, its output). A wrapper
    whose only other layers are augmentation (identity when not training) is looked through, and so
    is a backbone: a nested network whose output is a feature map is that feature map."""
    import keras

    from dltrain.networks.augmentation import RetinaAugmentation

    while isinstance(model.layers[-1], keras.Model) and all(
        isinstance(layer, (keras.layers.InputLayer, RetinaAugmentation)) for layer in model.layers[:-1]
    ):
        model = model.layers[-1]
    maps = [
        layer
        for layer in model.layers
        if len(layer.output.shape) == 4 and not isinstance(layer, keras.layers.InputLayer)
    ]
    unpooled = [layer for layer in maps if "pool" not in type(layer).__name__.lower()]
    if not maps:
        raise UsageError(
            f"model {model.name} has no convolutional feature map of its own to explain (an ensemble averages its "
            "members' models: explain each member's run)"
        )
    layer = (unpooled or maps)[-1]
    if not isinstance(layer, keras.Model):
        return keras.Model(model.inputs[0], [layer.output, model.outputs[0]])
    # A nested network's `output` belongs to its own graph; in `model`'s graph it is the output of the node
    # where `model` calls it (Keras 3 has no public accessor for a node's outputs): the one connected here.
    for node in reversed(layer._inbound_nodes):
        try:
            return keras.Model(model.inputs[0], [node.output_tensors[0], model.outputs[0]])
        except ValueError:  # a call of the network outside this model
            continue
    raise ValueError(f"model {model.name}: the feature map of {layer.name} is not connected to its input")


def answer_score(outputs):
    """The score whose gradient says what made the answer: the grade value of a regression head, the
    predicted class's logit against the mean logit for a softmax."""
    import tensorflow as tf

    outputs = tf.cast(outputs, tf.float32)
    if outputs.shape[-1] == 1:
        return outputs[:, 0]
    logits = tf.math.log(tf.maximum(outputs, 1e-30))  # the logits up to the normaliser, which cancels below
    chosen = tf.gather(logits, tf.argmax(outputs, axis=-1), axis=1, batch_dims=1)
    return chosen - tf.reduce_mean(logits, axis=-1)


def grad_cam(model, images: np.ndarray, batch_size: int = GRADCAM_BATCH) -> np.ndarray:
    """(images, height, width) heatmaps in [0, 1], one per image at the image's own size: the feature
    maps weighted by the mean gradient of the answer's score, positive part, upsampled bilinearly."""
    require_gradients()
    import tensorflow as tf

    features_and_output = feature_map_model(model)
    maps = []
    for start in range(0, len(images), batch_size):
        batch = tf.convert_to_tensor(images[start : start + batch_size])
        with tf.GradientTape() as tape:
            features, outputs = features_and_output(batch, training=False)
            # Scaled as mixed precision scales a loss: float16 gradients would underflow to zero otherwise
            # (each map is normalised below, so the scale cancels).
            score = answer_score(outputs) * GRADIENT_SCALE
        gradients = tf.cast(tape.gradient(score, features), tf.float32)
        features = tf.cast(features, tf.float32)
        weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        heat = tf.nn.relu(tf.reduce_sum(features * weights, axis=-1, keepdims=True))
        heat = tf.image.resize(heat, images.shape[1:3], method="bilinear")[..., 0]
        maps.append(heat.numpy())
    return normalised(np.concatenate(maps) if maps else np.zeros((0, *images.shape[1:3]), np.float32))


def input_saliency(model, windows: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(windows, steps, channels) in [0, 1]: the size of the gradient of the answer's score with respect to
    each reading of each channel, each window scaled to its own largest value."""
    require_gradients()
    import tensorflow as tf

    maps = []
    for start in range(0, len(windows), batch_size):
        batch = tf.convert_to_tensor(np.asarray(windows[start : start + batch_size], np.float32))
        with tf.GradientTape() as tape:
            tape.watch(batch)
            score = answer_score(model(batch, training=False)) * GRADIENT_SCALE
        maps.append(np.abs(tape.gradient(score, batch).numpy()))
    return normalised(np.concatenate(maps) if maps else np.zeros_like(windows, np.float32))


def normalised(maps: np.ndarray) -> np.ndarray:
    """Each map divided by its own largest value (a map of zeros stays zeros)."""
    peaks = maps.reshape(len(maps), -1).max(axis=1) if len(maps) else np.zeros(0)
    scale = np.where(peaks > 0, peaks, 1.0).reshape(-1, *([1] * (maps.ndim - 1)))
    return (maps / scale).astype(np.float32)


def hottest_centroid(heatmap: np.ndarray, share: float = 0.05) -> tuple[float, float]:
    """(row, column) centre of the hottest `share` of a heatmap's pixels: where it points."""
    cut = np.quantile(heatmap, 1 - share)
    rows, columns = np.nonzero(heatmap >= cut)
    return float(rows.mean()), float(columns.mean())
