"""The 1-D residual network of Wang, Yan and Oates ("Time series classification from scratch with deep
neural networks: a strong baseline", 2017), the strongest network of Ismail Fawaz et al.'s review
("Deep learning for time series classification: a review", 2019): three residual blocks of three
convolutions (kernels 8, 5, 3; 64, 128, 128 filters), batch norm after each, global average pooling,
softmax. The defaults are the paper's; the keys every model has (dropout, activation, initialiser,
L1/L2, a dense layer before the head) work here too."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from dltrain.networks import Network
from dltrain.networks.layers import activation_layer, classifier_head, convolution_1d, signal_input, weight_options
from dltrain.networks.settings import LARGEST_LAYER, ModelBase

Kernel = Annotated[int, Field(gt=0, le=64)]
Filters = Annotated[int, Field(gt=0, le=LARGEST_LAYER)]


class Resnet1dConfig(ModelBase):
    """A 1-D ResNet over signal windows (Wang et al. 2017): residual blocks of convolutions, global average
    pooling, softmax."""

    name: Literal["resnet1d"] = Field("resnet1d", description="the model to build (each has keys of its own)")
    block_filters: list[Filters] = Field(
        [64, 128, 128], min_length=1, max_length=16, description="filters of each residual block (one per block)"
    )
    kernel_sizes: list[Kernel] = Field(
        [8, 5, 3], min_length=1, max_length=8, description="kernel of each convolution in a block (one per convolution)"
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout before the head (the paper: none)")
    batch_norm: bool = Field(True, description="batch normalization after each convolution (the paper: yes)")
    head: Literal["classification"] = Field("classification", description="softmax over the classes")


def residual_block(hidden, filters: int, params, weights, label: str):
    """len(kernel_sizes) convolutions, the last one's activation after the sum with the shortcut; the
    shortcut is a 1x1 convolution where the number of channels changes (the paper's), else the input."""
    from keras import layers

    shortcut = hidden
    for index, kernel in enumerate(params.kernel_sizes, start=1):
        last = index == len(params.kernel_sizes)
        hidden = convolution_1d(hidden, filters, kernel, params, weights, f"{label}_conv{index}", activate=not last)
    if shortcut.shape[-1] != filters:
        shortcut = convolution_1d(shortcut, filters, 1, params, weights, f"{label}_shortcut", activate=False)
    elif params.batch_norm:
        shortcut = layers.BatchNormalization(momentum=0.9, name=f"{label}_shortcut_batch_norm")(shortcut)
    hidden = layers.Add(name=f"{label}_add")([shortcut, hidden])
    return activation_layer(params.activation, f"{label}_{params.activation}")(hidden)


def build_resnet1d(input_shape, num_classes, params, regularization=None):
    import keras
    from keras import layers

    inputs, hidden = signal_input(input_shape, params)
    weights = weight_options(params, regularization)
    for block, filters in enumerate(params.block_filters, start=1):
        hidden = residual_block(hidden, filters, params, weights, f"block{block}")
    hidden = layers.GlobalAveragePooling1D(name="global_average")(hidden)
    return keras.Model(inputs, classifier_head(hidden, num_classes, params, weights), name="resnet1d")


NETWORK = Network(Resnet1dConfig, build_resnet1d)  # registered by name in networks/__init__.py
