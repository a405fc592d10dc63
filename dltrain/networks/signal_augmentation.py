"""Inertial-signal augmentation (activity windows), the three of Um et al. ("Data augmentation of
wearable sensor data for Parkinson's disease monitoring using convolutional neural networks", 2017)
that suit activity windows: time warping (the window's pace sped up in some stretches and slowed in
others, its start and end kept), a small random 3-D rotation applied alike to every sensor triad of a
window (as if the phone sat a little differently on the body), and amplitude scaling per channel.
Off unless chosen.

It is a layer at the model's input, before the standardisation (a rotation mixes x, y and z only in
the sensor's own units), and acts in training alone. Its draws come from a Keras seed generator seeded
by `train.seed`, whose state is saved with the model's checkpoints: a run repeats with its seed, and a
resumed run goes on drawing where it stopped. Noise on the readings is `model.input_noise`.
"""

from __future__ import annotations

import math

import keras
import numpy as np

WARP_KNOTS = 4  # the pace is drawn at 4 points of a window and varies linearly between them: smooth, not jittery


def knot_interpolation(readings: int, knots: int = WARP_KNOTS) -> np.ndarray:
    """(knots, readings) weights that interpolate values at `knots` evenly spaced points linearly
    over every reading of a window."""
    where = np.linspace(0, knots - 1, readings)
    return np.stack([np.clip(1 - np.abs(where - knot), 0, None) for knot in range(knots)]).astype("float32")


def time_warped(windows, pace):
    """`windows` (batch, readings, channels) resampled at the time each reading reaches when the window
    moves at `pace` (batch, readings, positive): a slower pace stretches that part of the window. Each
    step advances by the mean pace of its two readings, and the time is rescaled to end where the window
    ends, so the first and last readings stay where they are; between readings, linear interpolation."""
    ops = keras.ops
    readings = windows.shape[1]
    steps = (pace[:, 1:] + pace[:, :-1]) / 2
    time = ops.concatenate([ops.zeros_like(pace[:, :1]), ops.cumsum(steps, axis=1)], axis=1)
    time = time * ((readings - 1) / ops.maximum(time[:, -1:], 1e-6))
    before = ops.clip(ops.floor(time), 0, readings - 1)
    after = ops.minimum(before + 1, readings - 1)
    weight = ops.expand_dims(time - before, -1)
    channels = ops.shape(windows)[-1]

    def gather(index):
        index = ops.broadcast_to(
            ops.expand_dims(ops.cast(index, "int32"), -1), (ops.shape(windows)[0], readings, channels)
        )
        return ops.take_along_axis(windows, index, axis=1)

    return gather(before) * (1 - weight) + gather(after) * weight


def rotation_matrices(axis, angle):
    """(batch, 3, 3) rotations by `angle` (batch,) about unit `axis` (batch, 3): Rodrigues' formula."""
    ops = keras.ops
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    zero = ops.zeros_like(x)
    cross = ops.reshape(ops.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=1), (-1, 3, 3))
    sine = ops.reshape(ops.sin(angle), (-1, 1, 1))
    cosine = ops.reshape(ops.cos(angle), (-1, 1, 1))
    identity = ops.eye(3, dtype=axis.dtype)[None]
    return identity + sine * cross + (1.0 - cosine) * ops.matmul(cross, cross)


@keras.saving.register_keras_serializable(package="dltrain")
class SignalAugmentation(keras.layers.Layer):
    """Time warping, then rotation of each triad by one draw per window, then scaling of each channel;
    float32, training only."""

    def __init__(
        self,
        triads: list[list[int]],
        rotation_degrees: float,
        scaling: float,
        seed: int = 0,
        time_warp: float = 0.0,
        **kwargs,
    ):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.triads = [list(map(int, triad)) for triad in triads]
        self.rotation_degrees = float(rotation_degrees)
        self.scaling = float(scaling)
        self.time_warp = float(time_warp)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, windows, training=False):
        if not training:
            return windows
        ops = keras.ops
        windows = ops.cast(windows, "float32")
        batch, channels = ops.shape(windows)[0], windows.shape[-1]
        if self.time_warp and (windows.shape[1] or 0) > 1:  # windows of a known length (a DATA_DIR's are)
            knots = keras.random.uniform(
                (batch, WARP_KNOTS), 1 - self.time_warp, 1 + self.time_warp, seed=self.seed_generator
            )
            windows = time_warped(windows, ops.matmul(knots, knot_interpolation(windows.shape[1])))
        if self.rotation_degrees and self.triads:
            axis = keras.random.normal((batch, 3), seed=self.seed_generator)
            axis = axis / ops.maximum(ops.norm(axis, axis=1, keepdims=True), 1e-6)
            limit = math.radians(self.rotation_degrees)
            angle = keras.random.uniform((batch,), -limit, limit, seed=self.seed_generator)
            turn = ops.transpose(rotation_matrices(axis, angle), (0, 2, 1)) - ops.eye(3)  # per reading: v R^T - v
            for triad in self.triads:  # disjoint: each triad's channels change, and nothing else
                select = np.eye(channels, dtype="float32")[:, triad]  # (channels, 3)
                windows = windows + ops.matmul(ops.matmul(ops.matmul(windows, select), turn), select.T)
        if self.scaling:
            factors = keras.random.uniform(
                (batch, 1, channels), 1 - self.scaling, 1 + self.scaling, seed=self.seed_generator
            )
            windows = windows * factors
        return windows

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "triads": self.triads,
            "rotation_degrees": self.rotation_degrees,
            "scaling": self.scaling,
            "time_warp": self.time_warp,
            "seed": self.seed,
        }


def with_signal_augmentation(model, triads: list[list[int]], settings, seed: int):
    """`model` (taking raw windows) behind a SignalAugmentation layer."""
    inputs = keras.Input(shape=model.input_shape[1:], name="signals")
    layer = SignalAugmentation(
        triads,
        settings.signal_rotation,
        settings.signal_scaling,
        seed,
        time_warp=settings.signal_time_warp,
        name="augment_signals",
    )
    return keras.Model(inputs, model(layer(inputs)), name=model.name)
