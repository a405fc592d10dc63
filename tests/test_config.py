"""Configuration layering (defaults < preset/file < --set) and its one-line errors."""

from __future__ import annotations

import pytest
import yaml

from dltrain.config.loading import load_config, preset_names, valid_keys
from dltrain.config.schema import Config
from dltrain.core.errors import UsageError


def test_har_gru_preset_ships_with_the_package():
    assert "har-gru" in preset_names()
    config = load_config("har-gru")
    assert config.model.name == "gru"
    assert config.optimizer.name == "adam"


@pytest.mark.parametrize("preset", ["har-gru", "retina-cnn", "retina-512"])
@pytest.mark.parametrize("epochs", [1, 2, 10])
def test_any_epoch_count_works_with_every_preset(preset, epochs):
    """A preset's warm-up longer than a short run is shortened to a quarter of it, and the value
    used is what the config (and so config.yaml) holds."""
    config = load_config(preset, [f"train.epochs={epochs}"])
    assert config.train.epochs == epochs
    assert config.early_stopping.start_from_epoch < epochs
    preset_warm_up = load_config(preset).early_stopping.start_from_epoch
    expected = preset_warm_up if preset_warm_up < epochs else epochs // 4
    assert config.early_stopping.start_from_epoch == expected


def test_a_cosine_warm_up_from_a_file_fits_a_short_run(tmp_path):
    path = tmp_path / "cosine.yaml"
    path.write_text(yaml.safe_dump({"schedule": {"name": "cosine", "warmup_epochs": 5}, "train": {"epochs": 20}}))
    assert load_config(str(path), ["train.epochs=4"]).schedule.warmup_epochs == 1
    assert load_config(str(path)).schedule.warmup_epochs == 5


def test_a_presets_warm_up_fits_the_epochs_after_a_frozen_backbone():
    settings = ["model.name=backbone", "train.epochs=6", "train.freeze_backbone_epochs=2"]
    config = load_config("retina-512", settings)  # the preset's 5 warm-up epochs do not fit in 4
    assert config.schedule.warmup_epochs == 1 and config.train.freeze_backbone_epochs == 2


def test_a_weights_file_is_recorded_with_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config("retina-cnn", ["model.name=backbone", "model.weights=weights/b0.weights.h5"])
    assert config.model.weights == str(tmp_path / "weights" / "b0.weights.h5")  # resumable from any folder


def test_required_keys_exist():
    for key in (
        "train.epochs",
        "train.batch_size",
        "train.seed",
        "optimizer.name",
        "optimizer.learning_rate",
        "model.name",
        "model.dropout",
        "model.batch_norm",
        "early_stopping.patience",
    ):
        assert key in valid_keys()


def test_file_overrides_defaults_and_set_overrides_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"train": {"epochs": 7, "batch_size": 16}, "model": {"units": 12}}))
    config = load_config(str(path), ["train.epochs=3", "model.batch_norm=true", "optimizer.learning_rate=5e-4"])
    assert config.train.epochs == 3  # --set wins over the file
    assert config.train.batch_size == 16  # the file wins over the defaults
    assert config.model.units == 12
    assert config.model.batch_norm is True
    assert config.optimizer.learning_rate == pytest.approx(5e-4)
    assert config.train.seed == Config().train.seed  # untouched default


def test_round_trip_through_yaml(tmp_path):
    config = load_config("har-gru", ["model.units=32"])
    path = tmp_path / "config.yaml"
    path.write_text(config.to_yaml())
    assert load_config(str(path)) == config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.colour=red"], "unknown config key 'model.colour'"),
        (["trainer.epochs=3"], "unknown config key 'trainer'"),
        (["train.epochs=0"], "train.epochs = 0: Input should be greater than 0"),
        (["train.epochs=ten"], "train.epochs = 'ten'"),
        (["train.epochs=2.5"], "train.epochs = 2.5"),
        (["optimizer.learning_rate=-0.1"], "optimizer.learning_rate = -0.1: Input should be greater than 0"),
        (["model.dropout=1.5"], "model.dropout = 1.5"),
        (
            ["optimizer.name=adamax"],
            "unknown optimizer 'adamax'; valid: adagrad, adam, adamw, momentum, nadam, nesterov, rmsprop, sgd",
        ),
        (["model.name=transformer"], "unknown model 'transformer'; valid: backbone, cnn, gru"),
        (["train.epochs"], "expected key=value"),
        (["train=3"], "train = 3"),
        (["train.epochs.deep=3"], "train.epochs is not a section"),
        (
            ["train.epochs=5", "early_stopping.start_from_epoch=5"],
            "start_from_epoch (5) must be below train.epochs (5)",
        ),
        (["train.freeze_backbone_epochs=2"], "train.freeze_backbone_epochs applies to model backbone only"),
        (["train.class_weight=balanced", "train.sampling=decay"], "would favour the rare classes twice"),
        (
            ["model.name=backbone", "train.epochs=3", "train.freeze_backbone_epochs=3"],
            "train.freeze_backbone_epochs (3) must be below train.epochs (3)",
        ),
        (
            [
                "model.name=backbone",
                "train.epochs=6",
                "train.freeze_backbone_epochs=2",
                "schedule.name=cosine",
                "schedule.warmup_epochs=4",
            ],
            "schedule.warmup_epochs (4) must be below the 4 epochs after the frozen ones",
        ),
    ],
)
def test_bad_overrides_are_one_line_usage_errors(overrides, message):
    with pytest.raises(UsageError) as raised:
        load_config("har-gru", overrides)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(UsageError, match="unknown config 'har-lstm'.*har-gru"):
        load_config("har-lstm")


def test_missing_config_file(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        load_config(str(tmp_path / "absent.yaml"))


def test_config_file_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(UsageError, match="expected a mapping"):
        load_config(str(path))


def test_invalid_yaml(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("train: {epochs: [\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_config(str(path))
