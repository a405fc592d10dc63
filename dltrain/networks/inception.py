"""InceptionTime's network (Ismail Fawaz et al., "InceptionTime: finding AlexNet for time series
classification", 2020): six Inception modules, each a 1x1 bottleneck into parallel convolutions of
three lengths (40, 20, 10) beside a max-pooled 1x1 branch, concatenated, batch-normalised; a residual
connection every third module; global average pooling and softmax. The defaults are the paper's (its
ensemble of five such networks is `dltrain ensemble`'s business, not the network's)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from dltrain.networks import Network
from dltrain.networks.layers import activation_layer, classifier_head, convolution_1d, signal_input, weight_options
from dltrain.networks.settings import LARGEST_LAYER, ModelBase


class InceptionConfig(ModelBase):
    """InceptionTime's network over signal windows (Ismail Fawaz et al. 2020)."""

    name: Literal["inception"] = Field("inception", description="the model to build (each has keys of its own)")
    filters: int = Field(32, gt=0, le=LARGEST_LAYER, description="filters of each branch of a module (4 branches)")
    depth: int = Field(6, ge=1, le=24, description="Inception modules in a row")
    kernel_sizes: list[Annotated[int, Field(gt=0, le=128)]] = Field(
        [40, 20, 10], min_length=1, max_length=6, description="kernel of each parallel convolution of a module"
    )
    bottleneck: int = Field(
        32, ge=0, le=LARGEST_LAYER, description="filters of the 1x1 convolution before the branches (0: none)"
    )
    residual_every: int = Field(3, ge=0, le=24, description="a shortcut around every N modules (0: none)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout before the head (the paper: none)")
    batch_norm: bool = Field(True, description="batch normalization after each module and shortcut (the paper: yes)")
    head: Literal["classification"] = Field("classification", description="softmax over the classes")


def inception_module(hidden, params, weights, label: str):
    """Bottleneck, the parallel convolutions and the pooled 1x1 branch, concatenated (the paper's
    convolutions are linear and bias-free: batch norm and the activation follow the concatenation)."""
    from keras import layers

    linear = {"use_bias": False, "padding": "same", **weights}
    branch_input = hidden
    if params.bottleneck and hidden.shape[-1] > 1:
        branch_input = layers.Conv1D(params.bottleneck, 1, name=f"{label}_bottleneck", **linear)(hidden)
    branches = [
        layers.Conv1D(params.filters, kernel, name=f"{label}_conv{kernel}", **linear)(branch_input)
        for kernel in params.kernel_sizes
    ]
    pooled = layers.MaxPooling1D(3, strides=1, padding="same", name=f"{label}_pool")(hidden)
    branches.append(layers.Conv1D(params.filters, 1, name=f"{label}_pool_conv", **linear)(pooled))
    hidden = layers.Concatenate(name=f"{label}_concatenate")(branches)
    if params.batch_norm:
        hidden = layers.BatchNormalization(momentum=0.9, name=f"{label}_batch_norm")(hidden)
    return activation_layer(params.activation, f"{label}_{params.activation}")(hidden)


def build_inception(input_shape, num_classes, params, regularization=None):
    import keras
    from keras import layers

    inputs, hidden = signal_input(input_shape, params)
    weights = weight_options(params, regularization)
    shortcut = hidden
    for module in range(1, params.depth + 1):
        hidden = inception_module(hidden, params, weights, f"module{module}")
        if params.residual_every and module % params.residual_every == 0:
            label = f"shortcut{module // params.residual_every}"
            projected = convolution_1d(shortcut, hidden.shape[-1], 1, params, weights, label, activate=False)
            hidden = layers.Add(name=f"{label}_add")([projected, hidden])
            hidden = shortcut = activation_layer(params.activation, f"{label}_{params.activation}")(hidden)
    hidden = layers.GlobalAveragePooling1D(name="global_average")(hidden)
    return keras.Model(inputs, classifier_head(hidden, num_classes, params, weights), name="inception")


NETWORK = Network(InceptionConfig, build_inception)  # registered by name in networks/__init__.py
