"""`dltrain lab`: real runs on a small UCI-layout set; the report's statements follow its numbers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import invoke, write_uci_folder

from dltrain.lab.experiments import CellResult, best_loss_within, summarise_init
from dltrain.runs.rundir import Provenance

SMALL = ["--set", "train.batch_size=16"]


@pytest.fixture(scope="module")
def lab_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lab")
    dataset = write_uci_folder(root / "raw", windows_per_subject=24, window=32)
    result = invoke("prepare", "har", str(dataset), "--out", str(root / "data"))
    assert result.exit_code == 0, result.output
    return root / "data"


def test_init_experiment_zero_units_stay_identical_and_the_report_says_so(lab_data, tmp_path):
    import keras

    from dltrain.lab.probes import unit_spread

    out = tmp_path / "lab"
    result = invoke("lab", "init", "--data", str(lab_data), "--out", str(out), *SMALL)
    assert result.exit_code == 0, result.output
    report = (out / "REPORT.md").read_text()
    assert (out / "init" / "init.png").stat().st_size > 10_000 and "![Initialisation](init/init.png)" in report
    zeros = keras.saving.load_model(out / "init" / "runs" / "zeros" / "model.keras", compile=False)
    glorot = keras.saving.load_model(out / "init" / "runs" / "glorot_uniform" / "model.keras", compile=False)
    dense = zeros.layers[-1].get_layer("dense").get_weights()[0]
    assert (dense == dense[:, :1]).all()  # every unit's incoming weights are the first unit's
    assert unit_spread(glorot) > 1e-3
    assert "units of the first dense layer are still identical" in report
    table = pd.read_csv(out / "init" / "table.csv")
    assert table.loc[table["cell"] == "zeros", "dense units spread"].item() == 0
    assert "saturated" in report and "| normal N(0,1) | gru_1 |" in report  # the per-layer statistics

    (out / "REPORT.md").unlink()
    result = invoke("lab", "init", "--data", str(lab_data), "--out", str(out), "--report-only", *SMALL)
    assert result.exit_code == 0, result.output
    rebuilt = (out / "REPORT.md").read_text()
    assert (
        "the report only, from runs trained earlier" in rebuilt
        and "units of the first dense layer are still identical" in rebuilt
    )


def _result(label, extra, accuracy=0.5):
    history = pd.DataFrame(
        {
            "epoch": [0, 1],
            "loss": [1.0, 0.8],
            "val_loss": [1.1, 0.9],
            "accuracy": [0.4, accuracy],
            "val_accuracy": [0.3, accuracy],
        }
    )
    return CellResult(label, Path(label), history, Provenance(), extra=extra)


def test_identical_units_sentence_only_when_the_numbers_show_it():
    identical = [
        _result("zeros", {"unit_spread": 0.0, "identical_units": True, "dense_units": 32}),
        _result("glorot_uniform", {"unit_spread": 0.4}),
    ]
    _, statements = summarise_init(identical)
    assert any("still identical" in statement for statement in statements)
    differing = [
        _result("zeros", {"unit_spread": 0.2, "identical_units": False, "dense_units": 32}),
        _result("glorot_uniform", {"unit_spread": 0.4}),
    ]
    _, statements = summarise_init(differing)
    assert not any("still identical" in statement for statement in statements)
    assert any("did not stay identical" in statement for statement in statements)


def test_a_diverging_cell_is_reported_and_the_lab_goes_on(lab_data, tmp_path):
    out = tmp_path / "lab"
    settings = ["--set", "optimizer.name=sgd", "--set", "optimizer.learning_rate=1e30", *SMALL]
    result = invoke("lab", "loss", "--data", str(lab_data), "--out", str(out), *settings)
    assert result.exit_code == 0, result.output
    report = (out / "REPORT.md").read_text()
    assert "Cell `cross-entropy` failed: training diverged" in report or "Cell `cross-entropy` diverged" in report
    assert "Cell `MSE`" in report  # the second cell ran after the first failed
    assert (out / "loss" / "loss.png").is_file()


def test_best_loss_within_reads_only_the_epochs_finished_in_time():
    result = _result("mini-batch 64", {})
    result.epoch_seconds = [2.0, 2.0]
    assert best_loss_within(result, 3.0) == 1.1 and best_loss_within(result, 4.0) == 0.9
    assert pd.isna(best_loss_within(result, 1.0))


def test_unknown_experiment_lists_the_valid_ones(lab_data, tmp_path):
    result = invoke("lab", "initialisation", "--data", str(lab_data), "--out", str(tmp_path / "lab"))
    assert result.exit_code == 2
    assert (
        "'initialisation' is not one of 'init', 'loss', 'optimizers', 'schedules', 'regularization', " in result.output
    )
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "lab").exists()
