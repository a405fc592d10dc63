"""`dltrain refit`: a final model on train and val together, for the epochs a run kept, with nothing
chosen on the validation split it now trains on; the same capability for both tasks."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import yaml
from helpers.cli import invoke
from helpers.examples import settings

SOURCE = [
    "model.units=8",
    "model.layers=1",
    "model.conv_layers=0",
    "train.batch_size=8",
    "train.epochs=4",
    "train.min_steps_per_epoch=0",
    "optimizer.learning_rate=0.05",
    "schedule.name=plateau",
    "schedule.patience=1",
    "schedule.factor=0.5",
    "early_stopping.patience=3",
    "early_stopping.start_from_epoch=0",
    "early_stopping.monitor=val_loss",
]


@pytest.fixture(scope="module")
def source_run(data_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("refit") / "source"
    result = invoke("train", data_dir, "--out", run, *settings(SOURCE))
    assert result.exit_code == 0, result.output
    return run


def provenance(run):
    return json.loads((run / "provenance.json").read_text())


def test_refit_trains_the_kept_epochs_on_train_and_val_replaying_the_plateau_rates(source_run, data_dir, tmp_path):
    final = tmp_path / "final"
    result = invoke("refit", source_run, "--out", final)
    assert result.exit_code == 0, result.output
    source, refit = provenance(source_run), provenance(final)
    kept = source["best_epoch"]
    assert refit["fitted_on"] == ["train", "val"] and source["fitted_on"] == ["train"]
    assert refit["refit_of"] == {"run": str(source_run.resolve()), "epochs": kept, "chosen_by": "the run's kept epoch"}
    assert refit["epochs_run"] == refit["best_epoch"] == kept  # no early stopping; the last epoch is the model
    meta = json.loads((data_dir / "meta.json").read_text())
    batch = 8
    assert source["input"]["steps_per_epoch"] == math.ceil(meta["splits"]["train"] / batch)
    assert refit["input"]["steps_per_epoch"] == math.ceil((meta["splits"]["train"] + meta["splits"]["val"]) / batch)
    config = yaml.safe_load((final / "config.yaml").read_text())
    assert config["train"]["fit_on"] == "train+val"
    assert (config["early_stopping"]["patience"], config["early_stopping"]["restore_best"]) == (0, False)
    recorded = pd.read_csv(source_run / "history.csv")["learning_rate"].iloc[:kept].tolist()
    assert config["schedule"]["name"] == "recorded" and config["schedule"]["rates"] == pytest.approx(recorded)
    replayed = pd.read_csv(final / "history.csv")["learning_rate"].tolist()
    assert replayed == pytest.approx(recorded, rel=1e-6)  # the source's cuts, epoch by epoch
    assert "in-sample" in result.output


def test_refit_takes_a_number_of_epochs_and_refuses_what_cannot_be_a_final_model(source_run, data_dir, tmp_path):
    final = tmp_path / "final"
    result = invoke("refit", source_run, "--epochs", "1", "--out", final)
    assert result.exit_code == 0, result.output
    assert provenance(final)["refit_of"]["chosen_by"] == "--epochs" and provenance(final)["epochs_run"] == 1
    again = invoke("refit", final, "--out", tmp_path / "again")
    assert again.exit_code == 2 and "trained on train and val already" in again.output
    assert not (tmp_path / "again").exists()
    before = (source_run / "provenance.json").read_text()
    for out in (source_run, source_run / "final"):  # the run refitted is an input: never replaced, never a parent
        into = invoke("refit", source_run, "--out", out, "--force")
        assert into.exit_code == 2 and "Traceback" not in into.output, into.output
    assert (source_run / "provenance.json").read_text() == before and not (source_run / "final").exists()
    chosen = invoke("train", data_dir, "--out", tmp_path / "chosen", "--set", "train.fit_on=train+val")
    assert chosen.exit_code == 2
    assert "nothing may be chosen on it: set early_stopping.patience=0" in chosen.output
    assert "Traceback" not in chosen.output and not (tmp_path / "chosen").exists()


def test_a_refit_shows_no_validation_score_and_no_sweep_trains_on_validation(source_run, data_dir, tmp_path):
    """Its validation split was trained on: compare leaves its (in-sample) validation columns blank, and
    a sweep or the lab, which rank their runs on validation, refuse train.fit_on=train+val in one line."""
    final = tmp_path / "final"
    assert invoke("refit", source_run, "--epochs", "1", "--out", final).exit_code == 0
    rows = json.loads(invoke("compare", source_run, final, "--json").stdout)
    scored = [column for column in rows[0] if column.startswith("val ") and column.endswith("*")]
    assert scored and all(rows[0][column] is not None for column in scored)
    assert all(rows[1].get(column) is None for column in scored)
    nothing_chosen = ["early_stopping.patience=0", "early_stopping.restore_best=false", "schedule.name=constant"]
    grid = ["--grid", "train.fit_on=train,train+val", *settings(nothing_chosen)]
    sweep = invoke("sweep", data_dir, *grid, "--out", tmp_path / "sweep")
    assert sweep.exit_code == 2 and "a sweep compares its runs on the validation split" in sweep.output
    assert "Traceback" not in sweep.output and not (tmp_path / "sweep").exists()
    lab = invoke("lab", "init", "--data", data_dir, "--out", tmp_path / "lab", *settings(["train.fit_on=train+val"]))
    lab_refused = "the lab compares its runs on the validation split"
    assert lab.exit_code == 2 and lab_refused in lab.output and not (tmp_path / "lab").exists()


def test_refit_refuses_other_data_in_one_line(source_run, retina_run, tmp_path):
    result = invoke("refit", source_run, "--data", retina_run["data"], "--out", tmp_path / "final")
    assert result.exit_code != 0 and "is not the data" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "final").exists()


def test_a_retina_run_refits_alike(retina_run, tmp_path):
    final = tmp_path / "final"
    result = invoke("refit", retina_run["run"], "--epochs", "1", "--out", final)
    assert result.exit_code == 0, result.output
    refit = provenance(final)
    assert refit["fitted_on"] == ["train", "val"] and refit["epochs_run"] == 1
    meta = json.loads((retina_run["data"] / "meta.json").read_text())
    pooled = meta["splits"]["train"] + meta["splits"]["val"]
    assert refit["input"]["steps_per_epoch"] == math.ceil(pooled / 4)  # TINY_CNN's batch of 4
    scored = invoke("evaluate", final, "--split", "test")
    assert scored.exit_code == 0, scored.output
