"""Inertial-signal augmentation: time warping, a random rotation applied alike to every sensor triad of a
window and per-channel scaling, in training only, drawn from the run's seed."""

from __future__ import annotations

import json

import keras
import numpy as np
from helpers.cli import invoke
from helpers.examples import settings
from helpers.training import TINY_GRU

from dltrain.networks.signal_augmentation import WARP_KNOTS, SignalAugmentation, knot_interpolation
from dltrain.networks.signal_settings import sensor_triads

HAPT_CHANNELS = [f"{sensor}_{axis}" for sensor in ("body_acc", "body_gyro", "total_acc") for axis in "xyz"]


def test_triads_are_found_by_name_and_a_lone_axis_is_none():
    assert sensor_triads(HAPT_CHANNELS) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert sensor_triads(["acc.X", "acc.Y", "pressure", "acc.Z"]) == [[0, 1, 3]]
    assert sensor_triads(["x", "y", "z"]) == [[0, 1, 2]]  # a long CSV's columns
    assert sensor_triads(["x-axis", "y-axis", "z-axis", "tax"]) == [[0, 1, 2]]  # WISDM's
    assert sensor_triads(["gyro_x", "gyro_y", "heart_rate", "feature_0"]) == []


def windows(count=16, readings=20):
    return np.random.default_rng(0).normal(size=(count, readings, 10)).astype("float32")  # 3 triads and a spare


def test_a_rotation_moves_every_triad_alike_keeps_its_lengths_and_leaves_other_channels():
    layer = SignalAugmentation([[0, 1, 2], [3, 4, 5], [6, 7, 8]], rotation_degrees=30, scaling=0.0, seed=1)
    x = windows()
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    for triad in ([0, 1, 2], [3, 4, 5], [6, 7, 8]):
        np.testing.assert_allclose(
            np.linalg.norm(y[..., triad], axis=-1), np.linalg.norm(x[..., triad], axis=-1), rtol=1e-4
        )
    np.testing.assert_array_equal(y[..., 9], x[..., 9])
    assert not np.allclose(y[..., :3], x[..., :3])
    # One rotation per window for all its triads: solved from one triad, it maps the others too.
    rotation = np.linalg.lstsq(x[0][:, 0:3], y[0][:, 0:3], rcond=None)[0]
    np.testing.assert_allclose(x[0][:, 3:6] @ rotation, y[0][:, 3:6], atol=1e-4)
    angle = np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1, 1)))
    assert angle <= 30 + 1e-3
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)  # scoring: untouched


def test_scaling_stays_within_its_bounds_and_a_seed_repeats_its_draws():
    x = np.ones((64, 20, 10), "float32")
    first = SignalAugmentation([], rotation_degrees=0, scaling=0.2, seed=3)
    again = SignalAugmentation([], rotation_degrees=0, scaling=0.2, seed=3)
    y = keras.ops.convert_to_numpy(first(x, training=True))
    assert 0.8 - 1e-6 <= y.min() and y.max() <= 1.2 + 1e-6 and y.std() > 0.05
    assert np.allclose(y[:, 0], y[:, -1])  # one factor per channel of a window, for all its readings
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again(x, training=True)), y)


def test_time_warping_resamples_each_window_in_order_and_keeps_its_ends():
    readings = 50
    ramp = np.broadcast_to(np.arange(readings, dtype="float32")[None, :, None], (64, readings, 10)).copy()
    layer = SignalAugmentation([], rotation_degrees=0, scaling=0.0, seed=5, time_warp=0.3)
    warped = keras.ops.convert_to_numpy(layer(ramp, training=True))
    # On a ramp the output is the time each reading was read at: it starts and ends where the window
    # does, never goes back, moves at a pace within 1 +/- 0.3 of the mean one, and differs per window.
    np.testing.assert_allclose(warped[:, 0], 0, atol=1e-4)
    np.testing.assert_allclose(warped[:, -1], readings - 1, atol=1e-3)
    steps = np.diff(warped[..., 0], axis=1)
    assert (steps > 0).all() and steps.min() > 0.7 / 1.3 - 1e-3 and steps.max() < 1.3 / 0.7 + 1e-3
    # Smooth: the pace varies linearly between 4 knots, so neighbouring steps differ by little (about 0.05
    # here; a pace drawn afresh per reading would differ by ten times that).
    assert np.abs(np.diff(steps, axis=1)).max() < 6 * 0.3 / (0.7 * (readings - 2)) + 1e-4
    assert np.abs(warped - ramp).max() > 1.0 and np.ptp(warped[:, readings // 2, 0]) > 1.0
    np.testing.assert_allclose(warped[..., 0], warped[..., 9], atol=1e-5)  # every channel alike
    constant = np.full((4, readings, 10), 3.0, "float32")  # a resampling: a constant signal stays as it is
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(constant, training=True)), constant, rtol=1e-5)
    again = SignalAugmentation([], rotation_degrees=0, scaling=0.0, seed=5, time_warp=0.3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again(ramp, training=True)), warped)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(ramp, training=False)), ramp)


def test_the_pace_is_interpolated_between_its_knots():
    weights = knot_interpolation(10)
    assert weights.shape == (WARP_KNOTS, 10)
    np.testing.assert_allclose(weights.sum(axis=0), 1, rtol=1e-6)  # every reading: a blend of knots
    np.testing.assert_array_equal(weights[:, 0], np.eye(WARP_KNOTS)[0])  # the first and last readings sit on knots
    np.testing.assert_array_equal(weights[:, -1], np.eye(WARP_KNOTS)[-1])


def test_an_activity_run_trains_with_it_and_a_wrong_setting_is_one_line(uci_folder, tmp_path, retina_run):
    data = tmp_path / "data"
    assert invoke("prepare", "har", uci_folder, "--out", data).exit_code == 0
    chosen = ["augment.signal_rotation=20", "augment.signal_scaling=0.1", "augment.signal_time_warp=0.2"]
    run = tmp_path / "run"
    result = invoke("train", data, "--out", run, *settings(TINY_GRU + chosen))
    assert result.exit_code == 0, result.output
    model = keras.saving.load_model(run / "model.keras", compile=False)  # the layer is saved with the model
    assert model.get_layer("augment_signals").time_warp == 0.2
    from dltrain.data.datadir import DataDir
    from dltrain.experiments.lab.probes import core_model, output_statistics

    assert core_model(model).get_layer("class_probabilities") is not None  # the lab looks through both wrappers
    train = DataDir.open(data).split("train")
    assert 0 < output_statistics(model, train.x, train.y, "crossentropy")["largest_probability"] <= 1
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["status"] == "complete" and provenance["augmentation"] == "model"  # a layer, on any machine
    refused = invoke("train", retina_run["data"], "--out", tmp_path / "retina", "--set", "augment.signal_time_warp=0.1")
    assert refused.exit_code == 2 and "augment.signal_time_warp augments activity signals" in refused.output


def test_rotation_without_triads_is_refused_in_one_line(data_dir, tmp_path):
    result = invoke("train", data_dir, "--out", tmp_path / "run", "--set", "augment.signal_rotation=10")
    assert result.exit_code == 2 and "rotates sensor triads" in result.output and "feature_0" in result.output
    assert not (tmp_path / "run").exists()
