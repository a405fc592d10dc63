"""Fundus augmentation, the winners' set: rotation over 360 degrees, flips, zoom, stretch,
translation, brightness, contrast and colour, fused into one resampling and one element-wise pass.

The geometric changes are all affine maps, so they are composed into one matrix per image and
applied by a single projective transform (measured here on 32 images of 256 px: 0.09 s of CPU per
batch, where Keras's five preprocessing layers took 0.45 s). The same maths runs in two places,
chosen by `augment.placement`:
- `pipeline`: inside tf.data on the CPU (`augmented`), with stateless per-batch seeds drawn from
  `tf.data.Dataset.random`, so the draws do not depend on thread timing and a seed repeats a run;
- `model`: a `RetinaAugmentation` layer at the model's input, run in the training graph on the
  accelerator (keras.ops: TensorFlow or JAX), the choice at 512 px on a GPU, where the CPU would
  bound the step rate. It is registered for saving and does nothing outside training.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import keras

PIXEL_MAX = 255.0  # images are float32 in 0-255
# One uniform draw per image each: (name, low, high), given the config; colour draws three (RGB).
DRAWS = ("angle", "scale", "stretch", "flip_x", "flip_y", "shift_x", "shift_y", "brightness", "contrast")


def is_enabled(config) -> bool:
    return bool(
        config.flip
        or config.rotation
        or config.zoom
        or config.stretch
        or config.translation
        or config.brightness
        or config.contrast
        or config.colour
    )


def draw_bounds(config) -> dict[str, tuple[float, float]]:
    """The range of each per-image draw; a switched-off change draws its identity."""
    flip = (0.0, 1.0) if config.flip else (1.0, 1.0)  # < 0.5 flips; (1, 1) never does
    return {
        "angle": (-math.pi, math.pi) if config.rotation else (0.0, 0.0),
        "scale": (1.0 - config.zoom, 1.0 + config.zoom),
        "stretch": (1.0 - config.stretch, 1.0 + config.stretch),
        "flip_x": flip,
        "flip_y": flip,
        "shift_x": (-config.translation, config.translation),
        "shift_y": (-config.translation, config.translation),
        "brightness": (-config.brightness * PIXEL_MAX, config.brightness * PIXEL_MAX),
        "contrast": (1.0 - config.contrast, 1.0 + config.contrast),
        "colour": (1.0 - config.colour, 1.0 + config.colour),
    }


def affine_transforms(ops, draws: dict, height, width):
    """(batch, 8) projective transforms mapping each output pixel to its input pixel about the
    image centre: input = centre - shift + M (output - centre), M = rotation * scale * stretch * flips."""
    sign_x = ops.where(draws["flip_x"] < 0.5, -1.0, 1.0)
    sign_y = ops.where(draws["flip_y"] < 0.5, -1.0, 1.0)
    scale_x, scale_y = draws["scale"] * draws["stretch"], draws["scale"] / draws["stretch"]
    cosine, sine = ops.cos(draws["angle"]), ops.sin(draws["angle"])
    m00, m01 = cosine * scale_x * sign_x, -sine * scale_y * sign_y
    m10, m11 = sine * scale_x * sign_x, cosine * scale_y * sign_y
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    offset_x = centre_x - draws["shift_x"] * width - m00 * centre_x - m01 * centre_y
    offset_y = centre_y - draws["shift_y"] * height - m10 * centre_x - m11 * centre_y
    zeros = ops.zeros_like(m00)
    return ops.stack([m00, m01, offset_x, m10, m11, offset_y, zeros, zeros], axis=1)


def photometric(ops, images, draws: dict):
    """Contrast about each channel's mean, per-channel colour gains, then brightness; clipped to 0-255."""
    mean = ops.mean(images, axis=(1, 2), keepdims=True)
    contrast = ops.reshape(draws["contrast"], (-1, 1, 1, 1))
    colour = ops.reshape(draws["colour"], (-1, 1, 1, 3))
    brightness = ops.reshape(draws["brightness"], (-1, 1, 1, 1))
    return ops.clip(((images - mean) * contrast + mean) * colour + brightness, 0.0, PIXEL_MAX)


def augment_batch(images, seed, config, fill_value: float = 0.0):
    """A randomly augmented copy of `images` (batch, height, width, 3) in 0-255 (any dtype), as float32,
    for the tf.data pipeline; `seed` is an int64 pair, split into one stateless seed per draw. What a
    rotation or shift uncovers gets `fill_value` (the photographs' background)."""
    import tensorflow as tf

    images = tf.cast(images, tf.float32)
    shape = tf.shape(images)
    batch = shape[0]
    seeds = tf.random.experimental.stateless_split(seed, len(DRAWS) + 1)
    bounds = draw_bounds(config)
    draws = {
        name: tf.random.stateless_uniform([batch], seeds[index], *bounds[name]) for index, name in enumerate(DRAWS)
    }
    draws["colour"] = tf.random.stateless_uniform([batch, 3], seeds[len(DRAWS)], *bounds["colour"])
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    ops = tensorflow_ops()
    images = tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=affine_transforms(ops, draws, height, width),
        output_shape=shape[1:3],
        fill_value=float(fill_value),
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )
    return photometric(ops, images, draws)


def bilinear_transform(images, transforms, fill_value: float = 0.0):
    """What ImageProjectiveTransformV3 computes with BILINEAR and CONSTANT (affine `transforms`, one row
    of 8 per image, the last two 0), written in keras.ops gathers so that XLA compiles it on either
    backend: TensorFlow's op has no XLA kernel. Output pixel (x, y) reads input (a0 x + a1 y + a2,
    a3 x + a4 y + a5), each of its four neighbours outside the image counting as `fill_value`."""
    ops = keras.ops
    shape = ops.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    rows, columns = ops.meshgrid(ops.arange(height, dtype="float32"), ops.arange(width, dtype="float32"), indexing="ij")
    rows, columns = ops.reshape(rows, (1, -1)), ops.reshape(columns, (1, -1))
    source_x = transforms[:, 0:1] * columns + transforms[:, 1:2] * rows + transforms[:, 2:3]  # (batch, pixels)
    source_y = transforms[:, 3:4] * columns + transforms[:, 4:5] * rows + transforms[:, 5:6]
    left, top = ops.floor(source_x), ops.floor(source_y)
    pixels = ops.reshape(images, (-1, channels))  # every pixel of every image, one row each
    first_pixel = ops.reshape(ops.arange(batch, dtype="int32") * (height * width), (-1, 1))
    result = ops.zeros_like(ops.reshape(images, (batch, -1, channels)))
    for corner_y, corner_x in ((top, left), (top, left + 1), (top + 1, left), (top + 1, left + 1)):
        weight = (1 - ops.abs(source_x - corner_x)) * (1 - ops.abs(source_y - corner_y))
        inside = (corner_x >= 0) & (corner_x <= ops.cast(width - 1, "float32"))
        inside = inside & (corner_y >= 0) & (corner_y <= ops.cast(height - 1, "float32"))
        row = ops.clip(ops.cast(corner_y, "int32"), 0, height - 1)
        column = ops.clip(ops.cast(corner_x, "int32"), 0, width - 1)
        values = ops.take(pixels, first_pixel + row * width + column, axis=0)  # (batch, pixels, channels)
        values = ops.where(ops.expand_dims(inside, -1), values, fill_value)
        result = result + ops.expand_dims(weight, -1) * values
    return ops.reshape(result, shape)


def tensorflow_ops() -> SimpleNamespace:
    """The few array functions the shared maths needs, as TensorFlow names them (keras.ops has them
    under these names already, for the model placement)."""
    import tensorflow as tf

    return SimpleNamespace(
        where=tf.where,
        cos=tf.cos,
        sin=tf.sin,
        stack=tf.stack,
        zeros_like=tf.zeros_like,
        reshape=tf.reshape,
        clip=tf.clip_by_value,
        mean=lambda values, axis, keepdims: tf.reduce_mean(values, axis=axis, keepdims=keepdims),
    )


AUGMENT_PARALLEL_BATCHES = 2  # batches augmented at once: the op is multithreaded; more only holds more memory


def augmented(dataset, config, seed: int, first_step: int = 0, fill_value: float = 0.0):
    """`dataset` of (images, targets) batches with `augment_batch` applied, in the images' own dtype
    (uint8 stays uint8, rounded: a quarter of float32's memory in every buffer). Batch k of the run
    (counting from `first_step`, the optimizer steps already taken) draws from (seed, k) alone: every
    batch gets its own draws, and a resumed run repeats exactly what the uninterrupted one would have drawn."""
    import tensorflow as tf

    def augment(batch, batch_seed):
        images, targets = batch
        changed = augment_batch(images, batch_seed, config, fill_value)
        if images.dtype != tf.float32:
            changed = tf.cast(tf.round(changed), images.dtype)  # photometric() clipped it to 0-255
        return changed, targets

    steps = tf.data.Dataset.counter(start=first_step, dtype=tf.int64)
    seeds = steps.map(lambda step: tf.stack([tf.constant(seed, tf.int64), step]))
    return tf.data.Dataset.zip(dataset, seeds).map(augment, num_parallel_calls=AUGMENT_PARALLEL_BATCHES)


@keras.saving.register_keras_serializable(package="dltrain")
class RetinaAugmentation(keras.layers.Layer):
    """The same augmentation as a layer at the model's input: on the accelerator, training only. It
    computes in float32 whatever the precision policy (float16 photographs times float32 draws is an
    error, and float16 holds 0-255 only to the nearest 1/8); its maths compiles under XLA."""

    def __init__(self, settings: dict, seed: int = 0, fill_value: float = 0.0, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.settings = dict(settings)
        self.seed = seed
        self.fill_value = float(fill_value)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=False):
        if not training:
            return images
        config = SimpleNamespace(**self.settings)
        ops = keras.ops
        images = ops.cast(images, "float32")
        batch = ops.shape(images)[0]
        bounds = draw_bounds(config)
        draws = {name: keras.random.uniform((batch,), *bounds[name], seed=self.seed_generator) for name in DRAWS}
        draws["colour"] = keras.random.uniform((batch, 3), *bounds["colour"], seed=self.seed_generator)
        height, width = ops.cast(ops.shape(images)[1], "float32"), ops.cast(ops.shape(images)[2], "float32")
        images = bilinear_transform(images, affine_transforms(ops, draws, height, width), self.fill_value)
        return photometric(ops, images, draws)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = {**super().get_config(), "settings": self.settings, "seed": self.seed, "fill_value": self.fill_value}
        config.pop("dtype", None)  # always float32 (set in __init__)
        return config


def with_augmentation(model, config, seed: int, fill_value: float = 0.0):
    """`model` behind a RetinaAugmentation layer (augment section `config`), as it is trained and saved."""
    inputs = keras.Input(shape=model.input_shape[1:], name="image")
    settings = config.model_dump(exclude={"placement"})
    layer = RetinaAugmentation(settings, seed=seed, fill_value=fill_value, name="augmentation")
    return keras.Model(inputs, model(layer(inputs)), name=model.name)
