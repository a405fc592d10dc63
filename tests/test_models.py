"""Every registered model and optimizer, built from its config on random tensors (timm-style)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.models import INPUTS, VARIANTS

from dltrain.config.schema import MODEL_CONFIGS, OptimizerConfig
from dltrain.core.errors import UsageError
from dltrain.networks import MODELS
from dltrain.networks.cnn import CnnConfig
from dltrain.networks.gru import GruConfig
from dltrain.networks.optimizers import OPTIMIZERS
from dltrain.networks.settings import Initializer

CASES = [(name, variant) for name in MODELS.names() for variant in VARIANTS[name]]


def test_every_registered_model_has_test_cases():
    assert set(MODELS.names()) == set(INPUTS) == set(VARIANTS) == set(MODEL_CONFIGS)


@pytest.mark.parametrize(
    ("name", "variant"), CASES, ids=[f"{name}-{','.join(variant) or 'defaults'}" for name, variant in CASES]
)
def test_model_maps_inputs_to_class_probabilities(name, variant):
    params = MODEL_CONFIGS[name](**({"units": 8} if name == "gru" else {}), **variant)
    model = MODELS.get(name).build(INPUTS[name], 4, params)
    # No Lambda layers: they hold Python code, which safe_mode refuses to load (and should).
    assert not [layer for layer in model._flatten_layers() if type(layer).__name__ == "Lambda"]
    batch = np.random.default_rng(0).uniform(0, 1, size=(3, *INPUTS[name])).astype(np.float32)
    probabilities = np.asarray(model(batch, training=False))
    assert probabilities.shape == (3, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_cnn_regression_head_has_one_output():
    model = MODELS.get("cnn").build((32, 32, 3), 5, CnnConfig(conv_layers=2, conv_filters=4, head="regression"))
    assert model(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 1)


def test_cnn_without_blocks_is_refused():
    with pytest.raises(ValueError, match="conv_layers"):
        CnnConfig(conv_layers=0)


def test_images_too_small_for_the_network_are_refused_with_the_size_it_needs():
    from dltrain.config.loading import load_config
    from dltrain.networks.cnn import final_map_side

    params = load_config("retina-512").model
    assert final_map_side(512, params) == 3 and final_map_side(252, params) == 0 and final_map_side(253, params) == 1
    with pytest.raises(ValueError, match="6 blocks pool 128 px images down to nothing; they need at least 253 px"):
        MODELS.get("cnn").build((128, 128, 3), 5, params)


def test_generalised_mean_pooling_stays_float32_under_mixed_precision():
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = MODELS.get("cnn").build((32, 32, 3), 5, CnnConfig(conv_layers=1, conv_filters=4, pooling="gem"))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("global_gem").compute_dtype == "float32"  # x^3 overflows float16 from x = 40
    outputs = model(np.full((1, 32, 32, 3), 255.0, np.float32))
    assert np.isfinite(np.asarray(outputs)).all()


def test_a_key_of_another_model_is_refused_naming_it():
    from dltrain.config.loading import load_config

    with pytest.raises(UsageError, match="model.units is a key of model gru, not of model cnn"):
        load_config("retina-cnn", ["model.units=8"])
    with pytest.raises(UsageError, match="model.head = 'regression'"):
        load_config("har-gru", ["model.head=regression"])


def test_gru_keeps_the_cudnn_conditions():
    model = MODELS.get("gru").build((16, 3), 2, GruConfig(units=4))
    for layer in model.layers:
        if layer.__class__.__name__ == "GRU":
            assert layer.activation.__name__ == "tanh" and layer.recurrent_activation.__name__ == "sigmoid"
            assert layer.recurrent_dropout == 0 and layer.reset_after and layer.use_bias and not layer.unroll


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_optimizer_builders_use_the_learning_rate(name):
    optimizer = OPTIMIZERS.get(name)(OptimizerConfig(name=name, learning_rate=0.0123), 0.0123)
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.0123)


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(UsageError, match="unknown model 'resnet'; valid: backbone, cnn, gru"):
        MODELS.get("resnet")


def _fit_a_few_steps(model, input_shape, classes=3):
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 255, size=(16, *input_shape)).astype(np.float32)
    y = rng.integers(0, classes, size=16)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)


@pytest.mark.parametrize(("initializer", "identical"), [("zeros", True), ("he_normal", False)])
def test_zero_initialisation_keeps_hidden_units_identical(initializer, identical):
    # The lecture's symmetry problem: with zeros every unit of a layer gets the same gradient.
    params = CnnConfig(conv_layers=1, conv_filters=4, dense_units=6, dropout=0.0, initializer=initializer)
    model = MODELS.get("cnn").build((16, 16, 3), 3, params)
    _fit_a_few_steps(model, (16, 16, 3))
    kernel = np.asarray(model.get_layer("dense").kernel)
    bias = np.asarray(model.get_layer("dense").bias)
    same = np.allclose(kernel, kernel[:, :1]) and np.allclose(bias, bias[0])
    assert same is identical


@pytest.mark.parametrize("name", Initializer.__args__)  # every choice of model.initializer
def test_every_initializer_builds_both_models(name):
    for model_name, shape in (("gru", INPUTS["gru"]), ("cnn", INPUTS["cnn"])):
        own = {"units": 4, "recurrent_initializer": name} if model_name == "gru" else {}
        params = MODEL_CONFIGS[model_name](conv_layers=1, conv_filters=4, initializer=name, **own)
        model = MODELS.get(model_name).build(shape, 3, params)
        assert np.isfinite(np.asarray(model(np.zeros((1, *shape), np.float32)))).all()


def test_uniform_fan_in_matches_the_lecture_bound():
    from dltrain.networks.layers import initializer

    values = np.asarray(initializer("uniform_fan_in")((400, 50)))
    assert np.abs(values).max() <= 1 / np.sqrt(400) + 1e-6 and np.abs(values).max() > 0.9 / np.sqrt(400)


def test_l2_penalty_enters_the_loss():
    from dltrain.config.schema import RegularizationConfig

    params = CnnConfig(conv_layers=1, conv_filters=4, dense_units=4)
    plain = MODELS.get("cnn").build((16, 16, 3), 3, params)
    penalised = MODELS.get("cnn").build((16, 16, 3), 3, params, RegularizationConfig(l2=0.5))
    assert not plain.losses and len(penalised.losses) >= 3  # convolutions, dense and output kernels


def test_input_standardisation_computes_in_float32_under_mixed_precision():
    """float16 cannot tell 1013.30 from 1013.25: standardised in float16, (1013.30 - 1013.25) / 0.05 is 0."""
    import keras

    from dltrain.networks.layers import with_standardisation

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        inner = keras.Sequential([keras.Input((1,)), keras.layers.Identity(dtype="float32")])
        model = with_standardisation(inner, [1013.25], [0.05])
        standardised = np.asarray(model(np.array([[1013.30]], np.float32)))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    np.testing.assert_allclose(standardised, [[1.0]], atol=1e-2)
