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

# Importing the builder modules registers them; they import Keras only when called.
from dltrain.networks import backbone, cnn, gru, inception, resnet1d  # noqa: E402,F401


def register_custom_layers() -> None:
    """Import the modules that define dltrain's own Keras layers (they register themselves for saving
    and loading), before a model that may hold them is loaded."""
    from dltrain.networks import augmentation, pooling  # noqa: F401
