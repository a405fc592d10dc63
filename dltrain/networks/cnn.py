"""The retinopathy CNN, from the course baseline to the Kaggle winners' shape: an optional strided
stem (JeffreyDF: 7x7/2; o_O: 5x5/2), blocks of convolutions with batch norm and pooling, a global
pooling (average, max, both, or generalised mean), a dense layer and the head."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from dltrain.networks import Network
from dltrain.networks.layers import activation_layer, classifier_head, weight_options
from dltrain.networks.settings import LARGEST_LAYER, ModelBase


class CnnConfig(ModelBase):
    """The image CNN, from the course baseline to the Kaggle winners' shape: an optional strided stem,
    blocks of convolutions with batch norm and pooling, a global pooling, a dense layer and the head."""

    name: Literal["cnn"] = Field("cnn", description="the model to build (each has keys of its own)")
    stem_filters: int = Field(
        0, ge=0, le=LARGEST_LAYER, description="filters of a strided first convolution (0: no stem)"
    )
    stem_kernel: int = Field(7, gt=0, le=15, description="kernel size of the stem (JeffreyDF 7, o_O 5)")
    stem_stride: int = Field(2, ge=1, le=4, description="stride of the stem")
    conv_layers: int = Field(
        4, ge=1, le=12, description="convolution blocks (convs_per_block convolutions and a pooling each)"
    )
    conv_filters: int = Field(
        64, gt=0, le=LARGEST_LAYER, description="filters of the first block; each block doubles them"
    )
    block_filters: list[Annotated[int, Field(gt=0, le=LARGEST_LAYER)]] = Field(
        default_factory=list, description="filters of each block, instead of conv_filters doubling (one per block)"
    )
    convs_per_block: int = Field(2, ge=1, le=4, description="convolutions in each block")
    conv_kernel: int = Field(5, gt=0, le=64, description="kernel size of the convolutions")
    block_pooling: Literal["max", "average"] = Field("max", description="the pooling that ends each block (stride 2)")
    pool_size: int = Field(2, ge=2, le=3, description="window of the block pooling (3: overlapping, as JeffreyDF)")
    pooling: Literal["global_average", "global_max", "average_max", "gem", "flatten"] = Field(
        "global_average",
        description="how the last feature map becomes a vector: average, max, both side by side, a learned "
        "generalised mean (p = 2 is o_O's RMS pooling), or flatten",
    )
    head: Literal["classification", "regression"] = Field(
        "classification",
        description="softmax over the classes, or one output regressed on the grade (MSE) with thresholds tuned on "
        "validation",
    )

    @model_validator(mode="after")
    def _one_filter_count_per_block(self):
        if self.block_filters and len(self.block_filters) != self.conv_layers:
            raise ValueError(
                f"model.block_filters has {len(self.block_filters)} entries for model.conv_layers = {self.conv_layers}"
            )
        return self


def block_filters(params) -> list[int]:
    """Filters of each block: model.block_filters as given, else conv_filters doubling every block."""
    return (
        list(params.block_filters)
        if params.block_filters
        else [params.conv_filters * 2**block for block in range(params.conv_layers)]
    )


def _convolution(hidden, filters: int, kernel: int, strides: int, label: str, params, weights):
    from keras import layers

    hidden = layers.Conv2D(
        filters, kernel, strides, padding="same", use_bias=not params.batch_norm, name=label, **weights
    )(hidden)
    if params.batch_norm:
        # momentum 0.9, not Keras's 0.99: a small set gives few steps per epoch, and the
        # moving statistics used at inference must catch up within a few epochs.
        hidden = layers.BatchNormalization(momentum=0.9, name=f"{label}_batch_norm")(hidden)
    return activation_layer(params.activation, f"{label}_{params.activation}")(hidden)


def final_map_side(side: int, params) -> int:
    """The side of the last block's output for images of `side` pixels (0: a pooling runs out of pixels)."""
    if params.stem_filters:
        side = -(-side // params.stem_stride)  # "same" padding
    for _ in block_filters(params):
        if side < params.pool_size:
            return 0
        side = (side - params.pool_size) // 2 + 1  # "valid" pooling, stride 2
    return side


def check_image_side(side: int, params) -> None:
    """A network too deep for the images, refused in one line with the size it needs."""
    if final_map_side(side, params) >= 1:
        return
    needed = next(size for size in range(side, 1 << 16) if final_map_side(size, params) >= 1)
    raise ValueError(
        f"model cnn: {len(block_filters(params))} blocks pool {side} px images down to nothing; they need at least "
        f"{needed} px (prepare with a larger --size, or use fewer blocks: model.conv_layers)"
    )


def build_cnn(input_shape, num_classes, params, regularization=None):
    """Images (uint8 or float in 0-255) -> class probabilities, or one grade value (regression head)."""
    import keras
    from keras import layers

    from dltrain.networks.pooling import global_pooling

    check_image_side(min(input_shape[:2]), params)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    hidden = layers.Rescaling(1 / 255, name="scale")(inputs)
    if params.input_noise:
        hidden = layers.GaussianNoise(params.input_noise, name="input_noise")(hidden)
    weights = weight_options(params, regularization)
    if params.stem_filters:
        hidden = _convolution(
            hidden, params.stem_filters, params.stem_kernel, params.stem_stride, "stem", params, weights
        )
    pool = layers.MaxPooling2D if params.block_pooling == "max" else layers.AveragePooling2D
    for block, filters in enumerate(block_filters(params), start=1):
        for repeat in range(1, params.convs_per_block + 1):
            hidden = _convolution(hidden, filters, params.conv_kernel, 1, f"block{block}_conv{repeat}", params, weights)
        hidden = pool(params.pool_size, strides=2, name=f"block{block}_pool")(hidden)
    hidden = global_pooling(params.pooling)(hidden)
    return keras.Model(inputs, classifier_head(hidden, num_classes, params, weights), name="cnn")


NETWORK = Network(CnnConfig, build_cnn)  # registered by name in networks/__init__.py
