"""A pretrained image network from keras.applications under the retina head, as practitioners have
graded fundus photographs since APTOS 2019: EfficientNet B0-B4, EfficientNetV2-S or ResNet50V2.

Preprocessing lives inside the model, as layers (no Lambda, so safe_mode loading still works):
EfficientNets rescale and normalise 0-255 pixels themselves; ResNet50V2 gets a Rescaling layer to
[-1, 1]. Weights never come from the network at run time: `model.weights` names a local file of
the backbone without its top (e.g. one saved with `save_weights` from keras.applications with
weights="imagenet" on a machine with a network); without it the backbone starts random. The nested
backbone is the model named "backbone", which `train.freeze_backbone_epochs` freezes first.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from dltrain.networks import MODELS
from dltrain.networks.layers import classifier_head, weight_options

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
    """The application without its top, named "backbone", with the weights of `weights_file` if given."""
    import keras

    builder, _ = APPLICATIONS[name]
    network = getattr(keras.applications, builder)(
        include_top=False, weights=None, input_shape=tuple(input_shape), name=BACKBONE_NAME
    )
    if weights_file:
        load_backbone_weights(network, name, Path(weights_file))
    return network


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


@MODELS.register("backbone")
def build_backbone(input_shape, num_classes, params, regularization=None):
    """Images in 0-255 -> class probabilities, or one grade value (regression head)."""
    import keras
    from keras import layers

    from dltrain.networks.pooling import global_pooling

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    hidden = inputs
    if not APPLICATIONS[params.backbone][1]:
        hidden = layers.Rescaling(1 / 127.5, offset=-1, name="scale")(hidden)  # ResNet50V2 wants [-1, 1]
    # training=False: batch norm runs in inference mode, frozen or not, as Keras's fine-tuning guide does:
    # the pretrained statistics are kept, and a small batch never disturbs them.
    hidden = backbone_network(params.backbone, input_shape, params.weights)(hidden, training=False)
    hidden = global_pooling(params.pooling)(hidden)
    outputs = classifier_head(hidden, num_classes, params, weight_options(params, regularization))
    return keras.Model(inputs, outputs, name=f"{params.backbone.lower()}_grader")
