"""Model registry: each name maps to a `Network`, its config section (a pydantic class whose
`name` is the registry name) and its builder. Every builder has one signature:
build(input_shape, num_classes, params, regularization=None) -> keras.Model.

`params` is the validated `model` section of the config, `regularization` its `regularization`
section (L1/L2 on the kernels). The returned model takes standardised
inputs and ends in a softmax over `num_classes`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from dltrain.core.registry import Registry


class Network(NamedTuple):
    config: type  # the `model` section of this network (a networks.settings.ModelBase)
    build: Callable


MODELS: Registry[Network] = Registry("model")

# Registered lazily, so that `--help` lists the names without importing pydantic; each module's
# NETWORK is imported on first use (the config schema loads them all), and its builder imports Keras
# only when called.
for _name in ("gru", "resnet1d", "inception", "cnn", "backbone"):
    MODELS.register_lazy(_name, f"dltrain.networks.{_name}:NETWORK")


def register_custom_layers() -> None:
    """Import the modules that define dltrain's own Keras layers (they register themselves for saving
    and loading), before a model that may hold them is loaded."""
    from dltrain.networks import augmentation, pooling, signal_augmentation  # noqa: F401
