"""Every registered model and optimizer, built from its config on random tensors (timm-style)."""

from __future__ import annotations

import numpy as np
import pytest

from dltrain.config import ModelConfig, OptimizerConfig
from dltrain.errors import UsageError
from dltrain.models import MODELS
from dltrain.optimizers import OPTIMIZERS

VARIANTS = [
    {},
    {"bidirectional": True, "layers": 1},
    {"batch_norm": True, "dropout": 0.0},
    {"conv_layers": 2, "conv_filters": 8, "conv_kernel": 3},
]


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda variant: ",".join(variant) or "defaults")
def test_model_maps_windows_to_class_probabilities(name, variant):
    params = ModelConfig(name=name, units=8, **variant)
    model = MODELS.get(name)((24, 5), 4, params)
    batch = np.random.default_rng(0).standard_normal((3, 24, 5)).astype(np.float32)
    probabilities = np.asarray(model(batch, training=False))
    assert probabilities.shape == (3, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    if variant.get("conv_layers"):
        assert any(layer.name == "conv_2" for layer in model.layers)


def test_gru_keeps_the_cudnn_conditions():
    model = MODELS.get("gru")((16, 3), 2, ModelConfig(units=4))
    for layer in model.layers:
        if layer.__class__.__name__ == "GRU":
            assert layer.activation.__name__ == "tanh" and layer.recurrent_activation.__name__ == "sigmoid"
            assert layer.recurrent_dropout == 0 and layer.reset_after and layer.use_bias and not layer.unroll


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_optimizer_builders_use_the_learning_rate(name):
    optimizer = OPTIMIZERS.get(name)(OptimizerConfig(name=name, learning_rate=0.0123))
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.0123)


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(UsageError, match="unknown model 'resnet'; valid: gru"):
        MODELS.get("resnet")
