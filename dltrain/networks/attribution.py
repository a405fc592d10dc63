"""What part of an input made the model's output: Grad-CAM over images (Selvaraju et al. 2017, as the
keras-io example `vision/grad_cam.py` computes it) and gradient saliency over signal windows.

Both differentiate the score of the model's own answer: a regression head's grade value, or the log
probability of the predicted class (the log keeps a confident softmax's gradient from vanishing).
Gradients are taken with TensorFlow's tape: dltrain's scoring runs on the TensorFlow backend.
"""

from __future__ import annotations

import numpy as np

GRADCAM_BATCH = 8  # photographs per gradient pass: 8 x 512 px feature maps stay well inside a CPU's memory


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
        if len(layer.output.shape) == 4 and not isinstance(layer, (keras.layers.InputLayer,))
    ]
    unpooled = [layer for layer in maps if "pool" not in type(layer).__name__.lower()]
    if not maps:
        raise ValueError(f"model {model.name} has no convolutional feature map to explain")
    layer = (unpooled or maps)[-1]
    # A nested network's `output` belongs to its own graph; its output in `model`'s graph is that of the
    # node where `model` calls it (Keras 3 has no public accessor for a node's outputs).
    features = layer._inbound_nodes[-1].output_tensors[0] if isinstance(layer, keras.Model) else layer.output
    return keras.Model(model.inputs[0], [features, model.outputs[0]])


def answer_score(outputs):
    """The score whose gradient says what made the answer: the grade value of a regression head, the
    log probability of the predicted class of a softmax."""
    import tensorflow as tf

    outputs = tf.cast(outputs, tf.float32)
    if outputs.shape[-1] == 1:
        return outputs[:, 0]
    chosen = tf.argmax(outputs, axis=-1)
    return tf.math.log(tf.gather(outputs, chosen, axis=1, batch_dims=1) + 1e-7)


def grad_cam(model, images: np.ndarray, batch_size: int = GRADCAM_BATCH) -> np.ndarray:
    """(images, height, width) heatmaps in [0, 1], one per image at the image's own size: the feature
    maps weighted by the mean gradient of the answer's score, positive part, upsampled bilinearly."""
    import tensorflow as tf

    features_and_output = feature_map_model(model)
    maps = []
    for start in range(0, len(images), batch_size):
        batch = tf.convert_to_tensor(images[start : start + batch_size])
        with tf.GradientTape() as tape:
            features, outputs = features_and_output(batch, training=False)
            score = answer_score(outputs)
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
    import tensorflow as tf

    maps = []
    for start in range(0, len(windows), batch_size):
        batch = tf.convert_to_tensor(np.asarray(windows[start : start + batch_size], np.float32))
        with tf.GradientTape() as tape:
            tape.watch(batch)
            score = answer_score(model(batch, training=False))
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
