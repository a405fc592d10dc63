"""Stacked GRU for inertial windows (batch, timesteps, channels), with an optional convolutional front end."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dltrain.networks import Network
from dltrain.networks.settings import LARGEST_LAYER, Initializer, ModelBase


class GruConfig(ModelBase):
    """Stacked GRU over inertial windows, with an optional convolutional front end."""

    name: Literal["gru"] = Field("gru", description="the model to build (each has keys of its own)")
    units: int = Field(64, gt=0, le=LARGEST_LAYER, description="units per recurrent layer")
    layers: int = Field(2, gt=0, le=16, description="number of stacked recurrent layers")
    bidirectional: bool = Field(False, description="each recurrent layer reads the window both ways")
    conv_layers: int = Field(
        0, ge=0, le=16, description="Conv1D blocks before the GRU (each halves the sequence); 0: none"
    )
    conv_filters: int = Field(64, gt=0, le=LARGEST_LAYER, description="filters of each Conv1D block")
    conv_kernel: int = Field(5, gt=0, le=64, description="kernel size of the convolutions")
    recurrent_dropout: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="dropout on the recurrent state; any value above 0 rules out the fast cuDNN kernel on a GPU",
    )
    recurrent_initializer: Initializer = Field("orthogonal", description="the GRUs' recurrent kernels")
    head: Literal["classification"] = Field("classification", description="softmax over the classes")

    def cudnn_recurrent(self) -> bool | None:
        # cuDNN's GRU kernel needs the builder's defaults (tanh, sigmoid, reset_after) and no recurrent dropout.
        return self.recurrent_dropout == 0


def build_gru(input_shape, num_classes, params, regularization=None):
    import keras
    from keras import layers

    from dltrain.networks.layers import (
        activation_layer,
        dense_weight_options,
        initializer,
        make_units_symmetric,
        signal_input,
        weight_options,
    )

    inputs, hidden = signal_input(input_shape, params)
    weights = weight_options(params, regularization)
    for index in range(params.conv_layers):
        # An optional convolutional front end: local motion patterns, and each pooling halves the
        # sequence the GRU has to walk through (the recurrent part is the slow, sequential one).
        hidden = layers.Conv1D(
            params.conv_filters, params.conv_kernel, padding="same", name=f"conv_{index + 1}", **weights
        )(hidden)
        if params.batch_norm:
            hidden = layers.BatchNormalization(name=f"conv_batch_norm_{index + 1}")(hidden)
        hidden = activation_layer(params.activation, f"conv_{params.activation}_{index + 1}")(hidden)
        hidden = layers.MaxPooling1D(2, padding="same", name=f"pool_{index + 1}")(hidden)
    for index in range(params.layers):
        last = index == params.layers - 1
        # Defaults kept cuDNN-compatible: tanh/sigmoid, reset_after=True, and no recurrent dropout
        # unless asked for (training warns on a GPU then: cuDNN cannot run it).
        recurrent = layers.GRU(
            params.units,
            return_sequences=not last,
            recurrent_dropout=params.recurrent_dropout,
            recurrent_initializer=initializer(params.recurrent_initializer),
            name=f"gru_{index + 1}",
            **weights,
        )
        if params.bidirectional:
            recurrent = layers.Bidirectional(recurrent, name=f"bidirectional_{index + 1}")
        hidden = recurrent(hidden)
        if params.batch_norm:
            hidden = layers.BatchNormalization(name=f"batch_norm_{index + 1}")(hidden)
        if params.dropout > 0:
            hidden = layers.Dropout(params.dropout, name=f"dropout_{index + 1}")(hidden)
    dense = (
        layers.Dense(params.dense_units, name="dense", **dense_weight_options(params, weights))
        if params.dense_units
        else None
    )
    if dense is not None:
        hidden = activation_layer(params.activation, f"dense_{params.activation}")(dense(hidden))
    head = layers.Dense(num_classes, activation="softmax", name="class_probabilities", dtype="float32", **weights)
    outputs = head(hidden)
    if dense is not None and params.dense_initializer == "symmetric":
        make_units_symmetric(dense, head)
    return keras.Model(inputs, outputs, name="gru_classifier")


NETWORK = Network(GruConfig, build_gru)  # registered by name in networks/__init__.py
