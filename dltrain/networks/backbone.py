"""A pretrained image network from keras.applications under the retina head, as practitioners have
graded fundus photographs since APTOS 2019: EfficientNet B0-B4, EfficientNetV2-S or ResNet50V2.

Preprocessing lives inside the model, as layers (no Lambda, so safe_mode loading still works):
EfficientNets rescale 0-255 pixels themselves (B0-B4 normalise by ImageNet's statistics, V2 scales
to [-1, 1]); ResNet50V2 gets a Rescaling layer to [-1, 1]. Weights never come from the network at
run time: `model.weights` names a local file of the backbone without its top (e.g. one saved with
`save_weights` from keras.applications with weights="imagenet" on a machine with a network); without
it the backbone starts random. The nested backbone is the model named "backbone", which
`train.freeze_backbone_epochs` freezes first.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from dltrain.networks import Network
from dltrain.networks.layers import classifier_head, weight_options
from dltrain.networks.settings import ModelBase


class BackboneConfig(ModelBase):
    """A pretrained image network (keras.applications) under the retina head; its weights come from a local file."""

    name: Literal["backbone"] = Field("backbone", description="the model to build (each has keys of its own)")
    backbone: Literal[
        "EfficientNetB0",
        "EfficientNetB1",
        "EfficientNetB2",
        "EfficientNetB3",
        "EfficientNetB4",
        "EfficientNetV2S",
        "ResNet50V2",
    ] = Field("EfficientNetB0", description="the keras.applications network, without its top")
    weights: str | None = Field(
        None,
        description="a local weights file of that network without its top (e.g. saved from keras.applications with "
        "weights='imagenet'); nothing is downloaded; none: random initialisation",
    )
    pooling: Literal["global_average", "global_max", "average_max", "gem"] = Field(
        "global_average", description="how the backbone's last feature map becomes a vector"
    )
    backbone_batch_norm: Literal["auto", "inference", "train"] = Field(
        "auto",
        description="the backbone's batch norm once it is unfrozen (frozen, it runs in inference mode): inference "
        "keeps the pretrained statistics (Keras's fine-tuning guide); train learns the fundus photographs' own, "
        "which differ from ImageNet's; auto: inference with model.weights, train without",
    )
    head: Literal["classification", "regression"] = Field(
        "regression", description="softmax over the classes, or one output regressed on the grade (MSE)"
    )

    @field_validator("weights")
    @classmethod
    def _absolute_weights_path(cls, weights: str | None) -> str | None:
        # config.yaml records where the file is, whatever folder a later command runs from
        return str(Path(weights).expanduser().absolute()) if weights else weights


BACKBONE_NAME = "backbone"
# keras.applications builder, and whether it takes 0-255 pixels itself (else it wants [-1, 1]).
APPLICATIONS = {
    "EfficientNetB0": ("EfficientNetB0", True),
    "EfficientNetB1": ("EfficientNetB1", True),
    "EfficientNetB2": ("EfficientNetB2", True),
    "EfficientNetB3": ("EfficientNetB3", True),
    "EfficientNetB4": ("EfficientNetB4", True),
    "EfficientNetV2S": ("EfficientNetV2S", True),
    "ResNet50V2": ("ResNet50V2", False),
}


def backbone_network(name: str, input_shape, weights_file: str | None):
    """The application without its top, with the weights of `weights_file` if given, as a model named
    "backbone". It is built under Keras's own name for it: EfficientNetV2 chooses its block settings
    and its input scaling by that name (a name starting with "b" gets EfficientNet V1's scaling)."""
    import keras

    builder, _ = APPLICATIONS[name]
    application = getattr(keras.applications, builder)(include_top=False, weights=None, input_shape=tuple(input_shape))
    if weights_file:
        load_backbone_weights(application, name, Path(weights_file))
    return keras.Model(application.input, application.output, name=BACKBONE_NAME)


def load_backbone_weights(network, name: str, path: Path) -> None:
    if not path.is_file():
        raise ValueError(f"model.weights {path}: no such file (a local weights file of {name} without its top)")
    try:
        with warnings.catch_warnings():  # Keras warns once per layer of a file of another network; one error says it
            warnings.simplefilter("ignore")
            network.load_weights(str(path))
    except Exception as error:  # Keras raises several types for a file of another network
        reason = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        raise ValueError(f"model.weights {path} does not fit {name} without its top ({reason})") from None


IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)


def imagenet_input_scaling(network, name: str):
    """EfficientNetB0-B4 built with weights="imagenet" divide their normalised input once more by
    sqrt(stddev) (a layer Keras adds only for that build; tensorflow/tensorflow#49930). A weights file
    saved from such a build carries ImageNet statistics in its Normalization layer; the same network
    built here (weights=None) lacks the layer, so an equivalent per-channel Rescaling goes in front:
    c * normalise(x) = normalise(c * x + 255 * mean * (1 - c)). None for other networks and weights."""
    import keras
    import numpy as np

    if not name.startswith("EfficientNetB"):
        return None
    normalization = next(layer for layer in network.layers if isinstance(layer, keras.layers.Normalization))
    mean = np.asarray(normalization.mean).reshape(-1)
    if not np.allclose(mean, IMAGENET_MEAN_RGB, atol=1e-3):
        return None
    scale = 1 / np.sqrt(np.asarray(IMAGENET_STDDEV_RGB))
    offset = 255 * mean * (1 - scale)
    return keras.layers.Rescaling(scale=scale.tolist(), offset=offset.tolist(), name="imagenet_scale")


def backbone_batch_norm(params) -> str:
    """model.backbone_batch_norm, with auto: inference with pretrained weights, train without (a random
    backbone has no statistics worth keeping)."""
    if params.backbone_batch_norm != "auto":
        return params.backbone_batch_norm
    return "inference" if params.weights else "train"


def set_backbone_trainable(backbone, trainable: bool, params) -> None:
    """Freeze or unfreeze the backbone. Frozen, its batch norm runs in inference mode (Keras runs a
    non-trainable BatchNormalization so); unfrozen, as model.backbone_batch_norm says: `inference`
    keeps the pretrained statistics, as Keras's fine-tuning guide does, by keeping the batch norm
    layers frozen (a `training=False` written into the functional graph would not: Keras 3 overrides
    it with the outer call's value); `train` lets them learn the fundus photographs' statistics."""
    import keras

    backbone.trainable = trainable
    if trainable and backbone_batch_norm(params) == "inference":
        for layer in backbone.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False


def build_backbone(input_shape, num_classes, params, regularization=None):
    """Images in 0-255 -> class probabilities, or one grade value (regression head)."""
    import keras
    from keras import layers

    from dltrain.networks.pooling import global_pooling

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    hidden = inputs
    if not APPLICATIONS[params.backbone][1]:
        hidden = layers.Rescaling(1 / 127.5, offset=-1, name="scale")(hidden)  # ResNet50V2 wants [-1, 1]
    network = backbone_network(params.backbone, input_shape, params.weights)
    scaling = imagenet_input_scaling(network, params.backbone)
    if scaling is not None:
        hidden = scaling(hidden)
    hidden = network(hidden)  # its batch norm's mode: set_backbone_trainable
    hidden = global_pooling(params.pooling)(hidden)
    outputs = classifier_head(hidden, num_classes, params, weight_options(params, regularization))
    return keras.Model(inputs, outputs, name=f"{params.backbone.lower()}_grader")


NETWORK = Network(BackboneConfig, build_backbone)  # registered by name in networks/__init__.py
