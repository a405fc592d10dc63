"""The fused retina augmentation: each switch does what it says, draws differ per batch and per
epoch, and a seed repeats them exactly."""

from __future__ import annotations

import numpy as np
import pytest

from dltrain.config.schema import AugmentConfig

tf = pytest.importorskip("tensorflow")

from dltrain.networks.augmentation import augment_batch, augmented, is_enabled  # noqa: E402

OFF = dict(flip=False, rotation=False, zoom=0.0, brightness=0.0, contrast=0.0)


def _images(count=8, size=33, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype(np.float32)


def _run(images, config, seed=(1, 2)):
    return augment_batch(tf.constant(images), tf.constant(seed, tf.int64), config).numpy()


def test_all_switches_off_is_disabled():
    assert not is_enabled(AugmentConfig(**OFF))
    assert is_enabled(AugmentConfig(**{**OFF, "contrast": 0.1}))


def test_flip_only_gives_one_of_the_four_flips_exactly():
    images = _images(count=32)
    output = _run(images, AugmentConfig(**{**OFF, "flip": True}))
    seen = set()
    for original, flipped in zip(images, output):
        candidates = {
            "none": original,
            "left-right": original[:, ::-1],
            "up-down": original[::-1],
            "both": original[::-1, ::-1],
        }
        matches = [name for name, candidate in candidates.items() if np.allclose(candidate, flipped, atol=1e-3)]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) >= 3  # 32 images: all four are expected, three at the very least


def test_rotation_keeps_the_centre_pixel_and_fills_corners_with_black():
    images = np.full((16, 33, 33, 3), 200.0, np.float32)
    images[:, 16, 16] = 17.0
    output = _run(images, AugmentConfig(**{**OFF, "rotation": True}))
    np.testing.assert_allclose(output[:, 16, 16], 17.0, atol=1e-3)
    corners = output[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners < 200).any()  # some angle moved a corner outside the image, filled with 0


def test_brightness_and_contrast_stay_in_range_and_within_their_bounds():
    images = _images(count=16)
    output = _run(images, AugmentConfig(**{**OFF, "brightness": 0.1}))
    shift = (output - images).reshape(16, -1)
    unclipped = (images.reshape(16, -1) > 30) & (images.reshape(16, -1) < 225)
    for row, mask in zip(shift, unclipped):
        assert np.ptp(row[mask]) < 1e-3  # one shift per image
        assert abs(row[mask][0]) <= 25.5 + 1e-3
    output = _run(images, AugmentConfig(**{**OFF, "contrast": 0.5}))
    assert output.min() >= 0 and output.max() <= 255


def test_same_seed_same_draws_other_seed_other_draws():
    images, config = _images(), AugmentConfig()
    np.testing.assert_array_equal(_run(images, config, (3, 4)), _run(images, config, (3, 4)))
    assert not np.allclose(_run(images, config, (3, 4)), _run(images, config, (3, 5)))


def test_each_batch_draws_anew_and_a_resumed_run_repeats_the_draws():
    """Batch k draws from (seed, k): batches differ, a seed repeats a run, and a run resumed at step 2
    draws exactly what the uninterrupted run drew from its step 2 on."""
    images = np.repeat(_images(count=1), 8, axis=0)  # the same image every batch: only the draws differ
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(8))).batch(2)

    def run(seed, first_step=0, skip=0):
        return [batch.numpy() for batch, _ in augmented(dataset.skip(skip), AugmentConfig(), seed, first_step)]

    whole = run(7)
    assert not np.allclose(whole[0], whole[1])
    np.testing.assert_array_equal(np.concatenate(whole), np.concatenate(run(7)))
    np.testing.assert_array_equal(np.concatenate(whole[2:]), np.concatenate(run(7, first_step=2, skip=2)))


@pytest.mark.parametrize("switch", ["stretch", "translation", "colour"])
def test_the_new_switches_change_images_and_only_when_on(switch):
    images = _images(count=8)
    np.testing.assert_allclose(_run(images, AugmentConfig(**OFF)), images, atol=1e-3)
    changed = _run(images, AugmentConfig(**{**OFF, switch: 0.3}))
    assert not np.allclose(changed, images, atol=1e-3)


def test_colour_scales_each_channel_on_its_own():
    images = np.full((16, 9, 9, 3), 100.0, np.float32)
    output = _run(images, AugmentConfig(**{**OFF, "colour": 0.2}))
    gains = output[:, 4, 4] / 100.0  # one gain per channel and image, within 1 +/- 0.2
    assert (gains >= 0.8 - 1e-4).all() and (gains <= 1.2 + 1e-4).all()
    assert (np.ptp(gains, axis=1) > 1e-3).any()  # the channels moved apart


def test_the_model_layer_augments_in_training_only_and_survives_saving(tmp_path):
    import keras

    from dltrain.networks.augmentation import RetinaAugmentation

    settings = AugmentConfig().model_dump(exclude={"placement"})
    inputs = keras.Input((33, 33, 3))
    model = keras.Model(inputs, RetinaAugmentation(settings, seed=3)(inputs))
    images = _images(count=4)
    np.testing.assert_array_equal(np.asarray(model(images, training=False)), images)
    trained = np.asarray(model(images, training=True))
    assert (
        trained.shape == images.shape
        and not np.allclose(trained, images)
        and 0 <= trained.min() <= trained.max() <= 255
    )
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    np.testing.assert_array_equal(np.asarray(loaded(images, training=False)), images)
    assert loaded.layers[-1].settings == settings
