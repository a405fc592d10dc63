"""What every network's config section has (`ModelBase`) and the choices its keys share; each network's
own section lives beside its builder (gru.py, cnn.py, backbone.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from dltrain.core.sections import Section

Initializer = Literal[
    "zeros",
    "normal",
    "uniform_fan_in",
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "orthogonal",
]
DenseInitializer = Literal[Initializer, "symmetric"]
Activation = Literal["relu", "leaky_relu", "elu", "selu", "gelu", "tanh", "sigmoid"]
LARGEST_LAYER = 4096  # units or filters of one layer; more does not fit a GPU's memory with any useful batch


class ModelBase(Section):
    """What every model has: dropout, batch norm, activation, initialisation, input noise, a dense layer before
    the head."""

    dropout: float = Field(0.2, ge=0.0, lt=1.0, description="dropout between layers and before the head")
    batch_norm: bool = Field(False, description="batch normalization after each convolution and recurrent layer")
    activation: Activation = Field(
        "relu", description="after the convolutions and the dense layer (not inside the GRUs)"
    )
    initializer: Initializer = Field("glorot_uniform", description="kernels of convolutions, GRUs and dense layers")
    input_noise: float = Field(
        0.0, ge=0.0, le=100.0, description="standard deviation of Gaussian noise on the (scaled) inputs, training only"
    )
    dense_units: int = Field(0, ge=0, le=LARGEST_LAYER, description="units of a dense layer before the head (0: none)")
    dense_initializer: DenseInitializer | None = Field(
        None,
        description="the dense layer's kernel alone (model.dense_units > 0); none: model.initializer; symmetric: "
        "every unit starts with the same incoming weights (one column of model.initializer's draw, repeated) and "
        "the same outgoing weights to the head (one row, repeated), the lecture's symmetry problem: the units get "
        "equal, non-zero gradients and stay identical (zeros alone gives a ReLU layer zero gradients: a dead layer)",
    )

    @model_validator(mode="after")
    def _dense_initializer_needs_a_dense_layer(self):
        if self.dense_initializer is not None and not self.dense_units:
            raise ValueError(
                f"model.dense_initializer={self.dense_initializer} applies to the dense layer before the head; "
                "set model.dense_units above 0"
            )
        return self

    def cudnn_recurrent(self) -> bool | None:
        """Whether the recurrent layers qualify for cuDNN's kernel on a GPU; None without recurrent layers."""
        return None
