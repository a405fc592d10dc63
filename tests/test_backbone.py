"""Pretrained backbones: weights from a local file only, a clear error for another network's file,
and a frozen-then-unfrozen run that really freezes, and resumes across the unfreezing."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import interrupt_after_epoch, invoke, kaggle_folder

from dltrain.config.loading import load_config
from dltrain.core.files import file_sha256
from dltrain.networks import MODELS
from dltrain.networks.backbone import backbone_network
from dltrain.training.session import resume_run, train_run

SHAPE = (32, 32, 3)
TWO_PHASES = [
    "model.name=backbone",
    "model.backbone=EfficientNetB0",
    "model.dense_units=0",
    "train.epochs=3",
    "train.freeze_backbone_epochs=1",
    "train.batch_size=8",
    "train.deterministic=true",
    "optimizer.frozen_learning_rate=0.01",
    "optimizer.learning_rate=0.001",
    "early_stopping.patience=0",
    "augment.placement=pipeline",
]


@pytest.fixture(scope="module")
def retina_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("backbone")
    source = kaggle_folder(root / "kaggle", patients=8, with_test=False)
    assert invoke("prepare", "retina", source, "--out", root / "data", "--size", "32", "--workers", "1").exit_code == 0
    return root / "data"


@pytest.fixture(scope="module")
def efficientnet_weights(tmp_path_factory):
    """A weights file of EfficientNetB0 without its top, as `save_weights` writes one (here of random weights)."""
    path = tmp_path_factory.mktemp("weights") / "efficientnetb0_notop.weights.h5"
    backbone_network("EfficientNetB0", SHAPE, None).save_weights(str(path))
    return path


def test_the_weights_file_is_loaded_into_the_backbone(efficientnet_weights):
    config = load_config("retina-cnn", ["model.name=backbone", f"model.weights={efficientnet_weights}"])
    model = MODELS.get("backbone")(SHAPE, 5, config.model, config.regularization)
    expected = keras.models.clone_model(backbone_network("EfficientNetB0", SHAPE, None))
    expected.load_weights(str(efficientnet_weights))
    for loaded, saved in zip(model.get_layer("backbone").get_weights(), expected.get_weights()):
        np.testing.assert_array_equal(loaded, saved)


def test_imagenet_statistics_get_the_input_scaling_keras_adds_for_imagenet(tmp_path):
    """A weights file saved from EfficientNetB0(weights="imagenet") holds ImageNet statistics in its
    Normalization layer; Keras's imagenet build divides the normalised input by sqrt(stddev) once more."""
    from dltrain.networks.backbone import IMAGENET_MEAN_RGB, IMAGENET_STDDEV_RGB, imagenet_input_scaling

    network = backbone_network("EfficientNetB0", SHAPE, None)
    assert imagenet_input_scaling(network, "EfficientNetB0") is None  # random weights: nothing to add
    normalization = next(layer for layer in network.layers if isinstance(layer, keras.layers.Normalization))
    normalization.set_weights([np.array(IMAGENET_MEAN_RGB), np.square(IMAGENET_STDDEV_RGB), np.array(1)])
    path = tmp_path / "imagenet-like.weights.h5"
    network.save_weights(str(path))

    config = load_config("retina-cnn", ["model.name=backbone", f"model.weights={path}"])
    model = MODELS.get("backbone")(SHAPE, 5, config.model, config.regularization)
    scaling, loaded = model.get_layer("imagenet_scale"), model.get_layer("backbone")
    to_unit = loaded.layers[1]  # Rescaling(1/255), then the Normalization
    loaded_normalization = next(layer for layer in loaded.layers if isinstance(layer, keras.layers.Normalization))
    pixels = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    ours = np.asarray(loaded_normalization(to_unit(scaling(pixels))))
    imagenet = np.asarray(loaded_normalization(to_unit(pixels))) / np.sqrt(IMAGENET_STDDEV_RGB)
    np.testing.assert_allclose(ours, imagenet, rtol=1e-4, atol=1e-4)
    model.save(tmp_path / "model.keras")
    keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)  # no Lambda: safe_mode loads it


def test_switching_the_model_drops_the_presets_keys_of_the_other_model():
    config = load_config("retina-512", ["model.name=backbone", "model.backbone=ResNet50V2"])
    assert config.model.name == "backbone" and config.model.head == "regression"  # shared keys are kept


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (["model.backbone=ResNet50V2", "model.weights={weights}"], "does not fit ResNet50V2 without its top"),
        (["model.weights={missing}"], "no such file"),
    ],
)
def test_a_weights_file_that_does_not_fit_is_one_line(retina_data, efficientnet_weights, tmp_path, settings, expected):
    values = {"weights": efficientnet_weights, "missing": tmp_path / "absent.weights.h5"}
    options = [item for setting in ["model.name=backbone", *settings] for item in ("--set", setting.format(**values))]
    result = invoke("train", retina_data, "--out", tmp_path / "run", *options, "--set", "train.epochs=1")
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error:")]) == 1
    assert not (tmp_path / "run").exists()


class BackboneSnapshots(keras.callbacks.Callback):
    """The backbone's and the head's weights at the start and at the end of every epoch."""

    def __init__(self):
        super().__init__()
        self.snapshots = []

    def on_epoch_end(self, epoch, logs=None):
        backbone = self.model.get_layer("backbone")
        self.snapshots.append((backbone.get_weights(), self.model.get_layer("grade").get_weights()))


def changed(before, after) -> bool:
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


def test_the_backbone_is_frozen_then_unfrozen_and_resumes_across_the_unfreezing(
    retina_data, efficientnet_weights, tmp_path
):
    weights = tmp_path / "weights" / "efficientnetb0.weights.h5"
    weights.parent.mkdir()
    weights.write_bytes(efficientnet_weights.read_bytes())
    config = load_config("retina-cnn", [*TWO_PHASES, f"model.weights={weights}"])
    initial, snapshots = BackboneSnapshots(), BackboneSnapshots()

    class AtStart(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if not initial.snapshots:
                initial.set_model(self.model)
                initial.on_epoch_end(-1)

    train_run(retina_data, tmp_path / "whole", config, "retina-cnn", extra_callbacks=[AtStart(), snapshots])
    (start_backbone, start_head), (first_backbone, first_head), (second_backbone, _), _ = [
        *initial.snapshots,
        *snapshots.snapshots,
    ]
    assert not changed(start_backbone, first_backbone)  # frozen, batch-norm statistics included
    assert changed(start_head, first_head)
    assert changed(first_backbone, second_backbone)
    provenance = json.loads((tmp_path / "whole" / "provenance.json").read_text())
    assert provenance["input"]["weights_sha256"] == file_sha256(weights)  # which weights it started from

    with pytest.raises(KeyboardInterrupt):
        train_run(retina_data, tmp_path / "parted", config, "retina-cnn", extra_callbacks=[interrupt_after_epoch(1)])
    weights.unlink()  # a resumed run takes its weights from last.keras, not from the starting file
    provenance = resume_run(tmp_path / "parted")
    assert provenance.input["weights_sha256"] == file_sha256(efficientnet_weights)  # still the start's record
    assert provenance.status == "complete" and provenance.resumed_after_epochs == [1]
    whole, parted = (pd.read_csv(tmp_path / run / "history.csv") for run in ("whole", "parted"))
    assert len(whole) == 3
    pd.testing.assert_frame_equal(parted, whole, rtol=1e-4)
    last = [keras.saving.load_model(tmp_path / run / "last.keras").get_weights() for run in ("whole", "parted")]
    for resumed, uninterrupted in zip(last[1], last[0]):
        np.testing.assert_allclose(resumed, uninterrupted, rtol=1e-4, atol=1e-5)
