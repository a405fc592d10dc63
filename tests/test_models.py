"""Every registered model and optimizer, built from its config on random tensors (timm-style)."""

from __future__ import annotations

import numpy as np
import pytest

from dltrain.config import ModelConfig, OptimizerConfig
from dltrain.errors import UsageError
from dltrain.models import MODELS
from dltrain.optimizers import OPTIMIZERS

# Each model's input, and variants that exercise its options.
INPUTS = {"gru": (24, 5), "cnn": (32, 32, 3)}
VARIANTS = {
    "gru": [{}, {"bidirectional": True, "layers": 1}, {"batch_norm": True, "dropout": 0.0}, {"conv_layers": 2, "conv_filters": 8, "conv_kernel": 3, "activation": "leaky_relu"}],
    "cnn": [{"conv_layers": 2, "conv_filters": 4}, {"conv_layers": 1, "batch_norm": True, "pooling": "flatten", "dense_units": 8}, {"conv_layers": 2, "conv_filters": 4, "activation": "leaky_relu", "dropout": 0.0}],
}
CASES = [(name, variant) for name in MODELS.names() for variant in VARIANTS[name]]


def test_every_registered_model_has_test_cases():
    assert set(MODELS.names()) == set(INPUTS) == set(VARIANTS)


@pytest.mark.parametrize(("name", "variant"), CASES, ids=[f"{name}-{','.join(variant) or 'defaults'}" for name, variant in CASES])
def test_model_maps_inputs_to_class_probabilities(name, variant):
    params = ModelConfig(name=name, units=8, **variant)
    model = MODELS.get(name)(INPUTS[name], 4, params)
    batch = np.random.default_rng(0).uniform(0, 1, size=(3, *INPUTS[name])).astype(np.float32)
    probabilities = np.asarray(model(batch, training=False))
    assert probabilities.shape == (3, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_cnn_regression_head_has_one_output():
    model = MODELS.get("cnn")((32, 32, 3), 5, ModelConfig(name="cnn", conv_layers=2, conv_filters=4, head="regression"))
    assert model(np.zeros((2, 32, 32, 3), np.float32)).shape == (2, 1)


def test_cnn_without_blocks_is_refused():
    with pytest.raises(ValueError, match="conv_layers >= 1"):
        MODELS.get("cnn")((32, 32, 3), 5, ModelConfig(name="cnn", conv_layers=0))


def test_gru_keeps_the_cudnn_conditions():
    model = MODELS.get("gru")((16, 3), 2, ModelConfig(units=4))
    for layer in model.layers:
        if layer.__class__.__name__ == "GRU":
            assert layer.activation.__name__ == "tanh" and layer.recurrent_activation.__name__ == "sigmoid"
            assert layer.recurrent_dropout == 0 and layer.reset_after and layer.use_bias and not layer.unroll


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_optimizer_builders_use_the_learning_rate(name):
    optimizer = OPTIMIZERS.get(name)(OptimizerConfig(name=name, learning_rate=0.0123), 0.0123)
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.0123)


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(UsageError, match="unknown model 'resnet'; valid: cnn, gru"):
        MODELS.get("resnet")
