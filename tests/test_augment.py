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


def test_the_model_layer_resamples_as_the_pipeline_op_does_and_compiles_under_xla():
    """The layer's gathers compute what ImageProjectiveTransformV3 computes (the pipeline's op), with
    either fill, and XLA compiles them (TensorFlow's op has no XLA kernel)."""
    from types import SimpleNamespace

    from dltrain.networks.augmentation import DRAWS, affine_transforms, bilinear_transform, draw_bounds, tensorflow_ops

    rng = np.random.default_rng(0)
    images = _images(count=6, size=21)
    bounds = draw_bounds(SimpleNamespace(**AugmentConfig(zoom=0.3, stretch=0.2, translation=0.3).model_dump()))
    draws = {name: tf.constant(rng.uniform(*bounds[name], 6), tf.float32) for name in DRAWS}
    transforms = affine_transforms(tensorflow_ops(), draws, 21.0, 21.0)
    compiled = tf.function(lambda batch, fill: bilinear_transform(batch, transforms, fill), jit_compile=True)
    for fill in (0.0, 128.0):
        expected = tf.raw_ops.ImageProjectiveTransformV3(
            images=images,
            transforms=transforms,
            output_shape=[21, 21],
            fill_value=fill,
            interpolation="BILINEAR",
            fill_mode="CONSTANT",
        )
        np.testing.assert_allclose(np.asarray(compiled(tf.constant(images), fill)), expected.numpy(), atol=1e-3)


@pytest.mark.parametrize("fill", [0.0, 128.0])
def test_rotations_fill_with_the_photographs_background_in_both_places(fill):
    """A Graham-normalised photograph lies on grey (128): what a rotation uncovers is grey too, in the
    pipeline and in the model, so that training sees what scoring sees."""
    import keras

    from dltrain.networks.augmentation import RetinaAugmentation

    config = AugmentConfig(**{**OFF, "rotation": True})
    images = np.full((16, 33, 33, 3), fill, np.float32)
    images[:, 8:25, 8:25] = 200.0
    pipeline = augment_batch(tf.constant(images), tf.constant((1, 2), tf.int64), config, fill)
    layer = RetinaAugmentation(config.model_dump(exclude={"placement"}), seed=1, fill_value=fill)
    for output in (pipeline.numpy(), np.asarray(layer(images, training=True))):
        corners = output[:, [0, 0, -1, -1], [0, -1, 0, -1]]
        np.testing.assert_allclose(corners, fill, atol=1e-3)  # the corners stay background, whatever the angle
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer)).fill_value == fill


def test_the_layer_computes_in_float32_under_mixed_precision():
    import keras

    from dltrain.networks.augmentation import RetinaAugmentation

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = RetinaAugmentation(AugmentConfig().model_dump(exclude={"placement"}), seed=1)
        output = layer(_images(count=2).astype(np.float16), training=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert layer.compute_dtype == "float32" and keras.backend.standardize_dtype(output.dtype) == "float32"


def test_the_pipeline_keeps_uint8_batches_uint8():
    images = np.random.default_rng(1).integers(0, 256, (4, 17, 17, 3), dtype=np.uint8)
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(4))).batch(2)
    batches = [batch for batch, _ in augmented(dataset, AugmentConfig(), 7)]
    assert all(batch.dtype == tf.uint8 for batch in batches)
