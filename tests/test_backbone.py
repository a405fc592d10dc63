"""Pretrained backbones: weights from a local file only, a clear error for another network's file,
and a frozen-then-unfrozen run that really freezes, and resumes across the unfreezing."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
from helpers.cli import invoke
from helpers.data import kaggle_folder
from helpers.training import interrupt_after_epoch

from dltrain.config.loading import load_config
from dltrain.core.files import file_sha256
from dltrain.networks import MODELS
from dltrain.networks.augmentation import with_augmentation
from dltrain.networks.backbone import BackboneConfig, backbone_network, set_backbone_trainable
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
    model = MODELS.get("backbone").build(SHAPE, 5, config.model, config.regularization)
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
    model = MODELS.get("backbone").build(SHAPE, 5, config.model, config.regularization)
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


BACKBONES = list(BackboneConfig.model_fields["backbone"].annotation.__args__)
# (scale, offset) of each Rescaling before the backbone's first convolution, and whether ImageNet's
# per-channel Normalization follows: the input scaling keras.applications gives each network.
INPUT_SCALING = {
    **{name: ([(1 / 255, 0.0)], True) for name in BACKBONES if name.startswith("EfficientNetB")},
    "EfficientNetV2S": ([(1 / 128, -1.0)], False),
    "ResNet50V2": ([(1 / 127.5, -1.0)], False),
}


def input_scaling(model) -> tuple[list[tuple[float, float]], bool]:
    """The Rescaling layers (outer model, then backbone) before the first convolution, and whether a
    Normalization is among them."""
    found, normalised = [], False
    for layer in [*model.layers[:-1], *model.get_layer("backbone").layers]:
        if isinstance(layer, keras.layers.Conv2D):
            break
        if isinstance(layer, keras.layers.Rescaling):
            found.append((float(np.ravel(layer.scale)[0]), float(np.ravel(layer.offset)[0])))
        normalised = normalised or isinstance(layer, keras.layers.Normalization)
    return found, normalised


def test_every_backbone_has_test_cases():
    assert set(INPUT_SCALING) == set(BACKBONES)


@pytest.mark.parametrize("name", BACKBONES)
def test_every_backbone_builds_with_its_own_input_scaling_and_trains_frozen_then_unfrozen(name):
    """Under what one GPU resolves to (mixed precision, augmentation in the model), one step with the
    backbone frozen, then one unfrozen. Eager steps: tracing these networks costs minutes on 2 cores
    (the frozen-then-unfrozen run above traces EfficientNetB0; make test-slow traces every one)."""
    config = load_config("retina-cnn", ["model.name=backbone", f"model.backbone={name}", "model.dense_units=0"])
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        network = MODELS.get("backbone").build(SHAPE, 5, config.model, config.regularization)
        scaling, normalised = input_scaling(network)
        model = with_augmentation(network, config.augment, seed=1)
        rng = np.random.default_rng(0)
        images, grades = rng.integers(0, 256, (4, *SHAPE)).astype(np.uint8), rng.uniform(0, 4, 4)
        losses = []
        for frozen in (True, False):
            network.get_layer("backbone").trainable = not frozen
            model.compile(optimizer="adam", loss="mean_squared_error", run_eagerly=True)
            losses.append(float(model.train_on_batch(images, grades)))
        outputs = model.predict(images, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    expected_scaling, expected_normalised = INPUT_SCALING[name]
    np.testing.assert_allclose(scaling, expected_scaling, rtol=1e-6)
    assert normalised == expected_normalised
    assert np.isfinite(losses).all() and outputs.dtype == np.float32 and np.isfinite(outputs).all()


@pytest.mark.parametrize(("mode", "learns"), [("inference", False), ("train", True), ("auto", True)])
def test_the_backbones_batch_norm_learns_the_fundus_statistics_only_when_asked(mode, learns):
    """Frozen, the statistics never move; unfrozen, they follow model.backbone_batch_norm (auto: learn
    without a weights file, as here)."""
    config = load_config(
        "retina-cnn", ["model.name=backbone", "model.dense_units=0", f"model.backbone_batch_norm={mode}"]
    )
    model = MODELS.get("backbone").build(SHAPE, 5, config.model, config.regularization)
    norm = next(
        layer for layer in model.get_layer("backbone").layers if isinstance(layer, keras.layers.BatchNormalization)
    )
    images, grades = np.random.default_rng(0).uniform(0, 255, (4, *SHAPE)), np.ones(4)
    moved = []
    for frozen in (True, False):  # as each phase of a training compiles it (training.building.compile_for)
        set_backbone_trainable(model.get_layer("backbone"), not frozen, config.model)
        model.compile(optimizer="sgd", loss="mean_squared_error", run_eagerly=True)
        before = np.asarray(norm.moving_mean).copy()
        model.train_on_batch(images, grades)
        moved.append(not np.allclose(before, np.asarray(norm.moving_mean)))
    assert moved == [False, learns]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
@pytest.mark.parametrize("name", BACKBONES)
def test_every_backbone_trains_and_evaluates_as_one_gpu_runs_it(name, backend, retina_data, tmp_path):
    """`make test-slow`: what one GPU of compute capability 8.0 resolves to (mixed precision, XLA,
    augmentation in the model), forced here, a frozen epoch then an unfrozen one, traced and compiled
    as a GPU would (minutes per backbone on 2 cores), then scored by `evaluate`."""
    import os
    import subprocess
    import sys

    from dltrain.training.resolution import Machine, resolve

    settings = ["model.name=backbone", f"model.backbone={name}", "model.dense_units=0", "train.epochs=2"]
    settings += ["train.freeze_backbone_epochs=1", "train.batch_size=4", "early_stopping.patience=0"]
    gpu = resolve(Machine.with_gpus("8.0", backend=backend), load_config("retina-cnn", settings)).settings()
    run = tmp_path / "run"
    command = [sys.executable, "-m", "dltrain", "train", str(retina_data), "--out", str(run), "--backend", backend]
    command += [part for setting in settings + gpu for part in ("--set", setting)]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    provenance = json.loads((run / "provenance.json").read_text())
    assert (provenance["precision"], provenance["xla"], provenance["augmentation"]) == ("mixed_float16", True, "model")
    scored = invoke("evaluate", run, "--split", "test", "--json")
    assert scored.exit_code == 0, scored.output
