"""The lecture's toolbox: every registered name trains on each task, and each switch does what it says."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.cli import invoke
from helpers.data import kaggle_folder, write_classroom_folder
from helpers.training import train_step_traces

from dltrain.config.loading import load_config
from dltrain.config.schema import TrainConfig
from dltrain.data.datadir import DataDir
from dltrain.networks.gru import GruConfig
from dltrain.networks.optimizers import OPTIMIZERS, SCHEDULES
from dltrain.training.building import build_model
from dltrain.training.session import train_run

REGISTRIES = {
    "optimizer.name": OPTIMIZERS.names(),
    "schedule.name": SCHEDULES.names(),
    "model.initializer": list(GruConfig.model_fields["initializer"].annotation.__args__),
    "model.recurrent_initializer": list(GruConfig.model_fields["recurrent_initializer"].annotation.__args__),
    "model.activation": list(GruConfig.model_fields["activation"].annotation.__args__),
    "train.loss": list(TrainConfig.model_fields["loss"].annotation.__args__),
}
# Each run draws one name from every registry in turn, so every name trains in some run of each
# task with as many runs as the longest registry has names (a covering of the product, which no
# CI could afford: tracing a model costs seconds). The test id lists the run's names.
RUNS = max(len(names) for names in REGISTRIES.values())
COMBINATIONS = [{key: names[index % len(names)] for key, names in REGISTRIES.items()} for index in range(RUNS)]
BASE = {
    "har": [
        "model.units=4",
        "model.layers=1",
        "model.conv_layers=1",
        "model.conv_filters=4",
        "train.batch_size=8",
        "train.epochs=1",
        "train.min_steps_per_epoch=0",
        "early_stopping.patience=0",
        "early_stopping.start_from_epoch=0",
    ],
    "retina": [
        "model.conv_layers=1",
        "model.conv_filters=4",
        "model.dense_units=4",
        "model.head=classification",
        "train.batch_size=8",
        "train.epochs=1",
        "early_stopping.patience=0",
        "early_stopping.monitor=val_kappa",
    ],
}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("toolbox")
    har_source = write_classroom_folder(root / "classroom", per_class=(16, 6), with_test=False)
    assert invoke("prepare", "har", str(har_source), "--out", str(root / "har")).exit_code == 0
    retina_source = kaggle_folder(root / "kaggle", patients=12)
    assert (
        invoke(
            "prepare", "retina", str(retina_source), "--out", str(root / "retina"), "--size", "32", "--workers", "1"
        ).exit_code
        == 0
    )
    return {"har": root / "har", "retina": root / "retina"}


def sets(settings: list[str]) -> list[str]:
    return [part for setting in settings for part in ("--set", setting)]


def tiny_run(prepared, task, tmp_path, *settings):
    preset = {"har": "har-gru", "retina": "retina-cnn"}[task]
    run = tmp_path / "run"
    train_run(prepared[task], run, load_config(preset, BASE[task] + list(settings)), preset)
    return run


def test_the_combinations_cover_every_name():
    for key, names in REGISTRIES.items():
        assert {combination[key] for combination in COMBINATIONS} == set(names)


@pytest.mark.parametrize("task", ["har", "retina"])
@pytest.mark.parametrize("combination", COMBINATIONS, ids=["-".join(c.values()) for c in COMBINATIONS])
def test_every_name_trains_an_epoch_and_is_recorded(prepared, task, tmp_path, combination, monkeypatch):
    traces = train_step_traces(monkeypatch)
    if task == "retina":  # the CNN has no recurrent kernel: the key is gru's alone (a key of another model is refused)
        combination = {key: value for key, value in combination.items() if key != "model.recurrent_initializer"}
    needs = ["schedule.rates=[0.001]"] if combination["schedule.name"] == "recorded" else []  # its own key
    run = tiny_run(prepared, task, tmp_path, *(f"{key}={value}" for key, value in combination.items()), *needs)
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    for key, value in combination.items():
        section, name = key.split(".")
        assert recorded[section][name] == value
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 1 and np.isfinite(history["learning_rate"]).all() and np.isfinite(history["loss"]).all()
    assert json.loads((run / "provenance.json").read_text())["status"] == "complete"
    # Traced once: the optimizer's and metrics' variables exist before fit (training.building.build_before_fit);
    # left to the first step, TensorFlow traced it a second time.
    assert len(traces) == 1


def test_mse_loss_is_the_squared_error_of_the_probabilities(prepared, tmp_path):
    # The mean over 3 classes of (p - onehot)^2 cannot exceed 2/3; the cross-entropy of an
    # untrained 3-class model is about ln 3 = 1.10.
    mse = pd.read_csv(tiny_run(prepared, "har", tmp_path, "train.loss=mse") / "history.csv")
    assert (mse["loss"] <= 2 / 3).all() and (mse["val_loss"] <= 2 / 3).all()
    crossentropy = pd.read_csv(tiny_run(prepared, "har", tmp_path / "ce") / "history.csv")
    assert crossentropy["loss"][0] > 0.9


def test_cross_entropy_is_computed_from_the_logits(prepared):
    """With logits (1000, 0, -1000) and true class 3 the loss is 2000; a clipped softmax would say 16.1."""
    data = DataDir.open(prepared["har"])
    model = build_model(data, load_config("har-gru", BASE["har"]), steps_per_epoch=1)
    head = model.get_layer("gru_classifier").get_layer("class_probabilities")
    kernel, _ = head.get_weights()
    head.set_weights([np.zeros_like(kernel), np.array([1000.0, 0.0, -1000.0], np.float32)])
    windows = data.split("val").x[:2]
    loss = model.evaluate(windows, np.array([2, 2]), verbose=0, return_dict=True)["loss"]
    assert loss == pytest.approx(2000.0, rel=1e-3)


def test_label_smoothing_reaches_the_loss(prepared, tmp_path):
    run = tiny_run(prepared, "har", tmp_path, "train.label_smoothing=0.2")
    model = keras.saving.load_model(run / "model.keras")
    assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.2)


def test_label_smoothing_needs_cross_entropy(prepared, tmp_path):
    result = invoke(
        "train",
        str(prepared["har"]),
        "--out",
        str(tmp_path / "r"),
        "--set",
        "train.loss=mse",
        "--set",
        "train.label_smoothing=0.1",
    )
    assert result.exit_code == 2 and "label_smoothing applies to the cross-entropy loss" in result.stderr


def test_recurrent_dropout_reaches_the_gru_and_the_cnn_refuses_it(prepared, tmp_path):
    run = tiny_run(prepared, "har", tmp_path, "model.recurrent_dropout=0.25")
    gru = keras.saving.load_model(run / "model.keras").get_layer("gru_classifier").get_layer("gru_1")
    assert gru.recurrent_dropout == 0.25
    with pytest.raises(Exception, match="model.recurrent_dropout is a key of model gru, not of model cnn"):
        tiny_run(prepared, "retina", tmp_path / "cnn", "model.recurrent_dropout=0.25")


def test_min_delta_decides_what_counts_as_an_improvement(prepared, tmp_path):
    # No change of val_loss can beat the first epoch by 100: stopped after patience (1) epoch.
    run = tiny_run(
        prepared, "har", tmp_path, "train.epochs=6", "early_stopping.patience=1", "early_stopping.min_delta=100"
    )
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["epochs_run"] == 2 and provenance["best_epoch"] == 1


def test_restore_best_false_keeps_the_last_epoch(prepared, tmp_path):
    run = tiny_run(prepared, "har", tmp_path, "train.epochs=3", "early_stopping.restore_best=false")
    kept, last = keras.saving.load_model(run / "model.keras"), keras.saving.load_model(run / "last.keras")
    for a, b in zip(kept.get_weights(), last.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert json.loads((run / "provenance.json").read_text())["best_epoch"] == 3


def test_tensorboard_logs_go_into_every_run_with_the_learning_rate(prepared, tmp_path):
    import tensorflow as tf

    run = tiny_run(prepared, "har", tmp_path)  # on by default
    events = list((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert events
    tags = {
        value.tag
        for path in events
        for event in tf.compat.v1.train.summary_iterator(str(path))
        for value in event.summary.value
    }
    assert {"epoch_loss", "epoch_learning_rate"} <= tags
    quiet = tiny_run(prepared, "har", tmp_path / "off", "train.tensorboard=false")
    assert not (quiet / "tensorboard").exists()


def test_a_global_batch_larger_than_the_training_set_is_clamped_counting_replicas(prepared, tmp_path):
    # 48 training windows: 32 per replica x 2 replicas would be 64; each replica takes 24 of them.
    run = tmp_path / "r"
    result = invoke(
        "train", prepared["har"], "--out", run, *sets(BASE["har"] + ["train.strategy=mirrored", "train.batch_size=32"])
    )
    assert result.exit_code == 0, result.output
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["batch_size"] == 24
    assert json.loads((run / "provenance.json").read_text())["global_batch"] == 48


def test_sweep_trains_the_product_grid_and_compares(prepared, tmp_path):
    out = tmp_path / "sweep"
    command = [
        "sweep",
        str(prepared["har"]),
        "--grid",
        "optimizer.name=sgd,adam",
        "--grid",
        "train.batch_size=8,16",
        "--out",
        str(out),
        *sum((["--set", setting] for setting in BASE["har"] + ["train.epochs=2"]), []),
    ]
    result = invoke(*command)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "comparison.csv")
    assert len(table) == 4 and {"optimizer.name", "train.batch_size", "val loss*", "epochs", "seconds"} <= set(
        table.columns
    )
    assert set(table["optimizer.name"]) == {"sgd", "adam"} and set(table["train.batch_size"]) == {8, 16}
    assert (out / "comparison.png").stat().st_size > 10_000
    assert "optimizer.name" in result.stdout
    again = invoke(*command)  # run again: every point is complete and kept
    assert again.exit_code == 0 and again.stderr.count("complete already, kept") == 4


def test_sweep_refuses_a_bad_grid_before_training(prepared, tmp_path):
    result = invoke("sweep", str(prepared["har"]), "--grid", "optimizer.name=sgd,lion", "--out", str(tmp_path / "s"))
    assert result.exit_code == 2 and "unknown optimizer 'lion'" in result.stderr
    assert not (tmp_path / "s").exists()
    result = invoke("sweep", str(prepared["har"]), "--grid", "optimizer.name", "--out", str(tmp_path / "s"))
    assert result.exit_code == 2 and "expected key=value1,value2" in result.stderr


def test_compare_names_what_is_not_a_run(tmp_path):
    (tmp_path / "empty").mkdir()
    result = invoke("compare", str(tmp_path / "empty"))
    assert (
        result.exit_code == 1
        and "is not a dltrain run (missing config.yaml" in result.stderr
        and "Traceback" not in result.output
    )


def test_a_device_out_of_memory_is_that_points_failure_and_the_sweep_goes_on(prepared, tmp_path):
    """The first point runs out of device memory at its first step (raised where TensorFlow raises it:
    inside the step, as a ResourceExhaustedError); the sweep records it in one line and trains the next."""
    import tensorflow as tf

    from dltrain.experiments.sweep import grid_points, train_points

    class OutOfMemoryAtFirstStep(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[64,128,9]")

    points = grid_points("har-gru", {"train.batch_size": ["16", "8"]}, BASE["har"])
    out = tmp_path / "sweep"
    failures = train_points(
        prepared["har"],
        "har-gru",
        points,
        out,
        extra_callbacks=lambda point: [OutOfMemoryAtFirstStep()] if point is points[0] else [],
    )
    assert [name for name, _ in failures] == [points[0].name]
    assert (
        failures[0][1].startswith("out of memory on the device (OOM when allocating")
        and "train.batch_size" in failures[0][1]
    )
    assert not (out / points[0].name).exists()  # nothing of the failed point looks like a run
    assert json.loads((out / points[1].name / "provenance.json").read_text())["status"] == "complete"
