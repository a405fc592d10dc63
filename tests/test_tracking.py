"""`train.tracking=mlflow`, against the real MLflow package and a file store in tmp_path."""

from __future__ import annotations

import json
import sys

import pandas as pd
import pytest
from helpers.cli import invoke
from helpers.training import interrupt_after_epoch
from mlflow.tracking import MlflowClient

from dltrain.config.loading import load_config
from dltrain.training.session import resume_run, train_run

TINY = [
    "model.units=8",
    "model.layers=1",
    "model.conv_layers=1",
    "model.conv_filters=8",
    "train.batch_size=8",
    "train.min_steps_per_epoch=0",
    "early_stopping.start_from_epoch=0",
    "train.tensorboard=false",
    "train.tracking=mlflow",
]


@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = (tmp_path / "store").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(tracking_uri=uri)


def only_run(client: MlflowClient, experiment: str = "dltrain"):
    (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return run


def test_a_tracked_run_logs_config_epochs_scores_and_files(data_dir, store, tmp_path):
    run_dir = tmp_path / "run"
    result = invoke(
        "train",
        str(data_dir),
        "--out",
        str(run_dir),
        "--config",
        "har-gru",
        "--set",
        "train.epochs=3",
        "--set",
        "optimizer.name=rmsprop",
        *[part for setting in TINY for part in ("--set", setting)],
    )
    assert result.exit_code == 0, result.output
    provenance = json.loads((run_dir / "provenance.json").read_text())
    run = only_run(store)
    assert provenance["tracking"]["mlflow_run_id"] == run.info.run_id and run.info.status == "FINISHED"
    assert run.data.params["optimizer.name"] == "rmsprop" and run.data.params["train.epochs"] == "3"
    assert run.data.tags["mlflow.runName"] == "run"
    history = pd.read_csv(run_dir / "history.csv")
    for key in ("loss", "val_loss", "val_accuracy", "learning_rate"):
        logged = store.get_metric_history(run.info.run_id, key)
        assert [metric.step for metric in logged] == [0, 1, 2]
        assert [metric.value for metric in logged] == pytest.approx(history[key].tolist(), rel=1e-6)
    assert run.data.metrics["final_val_accuracy"] == pytest.approx(provenance["metrics"]["val"]["accuracy"])
    artifacts = {entry.path for entry in store.list_artifacts(run.info.run_id)}
    assert {
        "model.keras",
        "config.yaml",
        "history.csv",
        "provenance.json",
        "metrics-val.json",
        "learning-curves.png",
    } <= artifacts


def test_the_default_store_is_mlruns_in_the_working_folder(data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    config = load_config("har-gru", [*TINY, "train.epochs=1", "train.tracking_experiment=lecture"])
    train_run(data_dir, tmp_path / "run", config, "har-gru")
    run = only_run(MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri()), "lecture")
    assert run.info.status == "FINISHED"


def test_a_resumed_run_continues_the_same_mlflow_run(data_dir, store, tmp_path):
    config = load_config("har-gru", [*TINY, "train.epochs=4"])
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_run(data_dir, run_dir, config, "har-gru", extra_callbacks=[interrupt_after_epoch(2)])
    assert only_run(store).info.status == "KILLED"
    resume_run(run_dir)
    run = only_run(store)  # still one run
    assert run.info.status == "FINISHED"
    assert [metric.step for metric in store.get_metric_history(run.info.run_id, "loss")] == [0, 1, 2, 3]


def test_an_unusable_store_is_one_line_before_any_run_folder(data_dir, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (blocker / "store").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    result = invoke(
        "train",
        str(data_dir),
        "--out",
        str(tmp_path / "run"),
        "--config",
        "har-gru",
        *[part for setting in [*TINY, "train.epochs=1"] for part in ("--set", setting)],
    )
    assert result.exit_code == 2 and "MLflow tracking at" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_tracking_without_the_extra_names_it(data_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # how Python marks a module as not importable
    result = invoke(
        "train",
        str(data_dir),
        "--out",
        str(tmp_path / "run"),
        "--config",
        "har-gru",
        *[part for setting in [*TINY, "train.epochs=1"] for part in ("--set", setting)],
    )
    assert result.exit_code == 2 and "pip install 'dltrain[mlflow]'" in result.output
    assert not (tmp_path / "run").exists()
