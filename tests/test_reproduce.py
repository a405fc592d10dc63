"""`dltrain reproduce`: both baselines land in their bands at the CI budget, and the same seed gives
the same metrics and history twice over (deterministic ops), checked on every baseline at a budget of
seconds (the ops, the pipeline and the seeding are the same at any budget)."""

from __future__ import annotations

import json

import pytest
from helpers.cli import invoke
from helpers.examples import small_baselines
from helpers.journey import result_of

import dltrain.experiments.reproduce as reproduce_module
from dltrain.cli.common import REGRESSION_EXIT_CODE
from dltrain.experiments.reproduce import load_baselines


@pytest.mark.parametrize("name", sorted(load_baselines()))
def test_ci_budget_lands_in_its_band(tmp_path, name):
    result = invoke("reproduce", name, "--budget", "ci", "--out", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["status"] == "ok" and row["baseline"] == name
    low, high = load_baselines()[name].budgets["ci"].band
    assert low <= row["mean"] <= high and row["values"] == [row["mean"]] and row["std"] == 0


@pytest.mark.xdist_group(name="journey")
def test_the_same_seed_repeats_exactly(journey, tmp_path, monkeypatch):
    """The documented `reproduce --all --budget ci --json` ran in the journey (helpers.journey, at the
    same shrunk budgets); run again here, it gives the same metrics and histories to the last digit."""
    monkeypatch.setattr(reproduce_module, "load_baselines", small_baselines)
    first = result_of(journey, ["reproduce", "--all", "--budget", "ci", "--json"])
    assert first["exit_code"] == 0, first["output"]
    result = invoke("reproduce", "--all", "--budget", "ci", "--out", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    measured = []
    for stdout, out in ((first["stdout"], journey / "models" / "reproduce"), (result.stdout, tmp_path)):
        rows = sorted(json.loads(stdout), key=lambda row: row["baseline"])
        assert [row["baseline"] for row in rows] == sorted(load_baselines())
        histories = [(out / f"{row['baseline']}-ci" / "run" / "history.csv").read_text() for row in rows]
        measured.append(([row["mean"] for row in rows], histories))
    assert measured[0] == measured[1]  # same metrics, and the same histories to the last digit


def test_reproduce_needs_names_or_all(tmp_path):
    result = invoke("reproduce", "--out", str(tmp_path))
    assert result.exit_code == 2 and "har-gru" in result.stderr
    result = invoke("reproduce", "lenet", "--out", str(tmp_path))
    assert result.exit_code == 2 and "unknown baseline 'lenet'; valid: har-gru, retina-cnn" in result.stderr
    result = invoke("reproduce", "har-gru", "--budget", "huge", "--out", str(tmp_path))
    assert result.exit_code == 2 and "'huge' is not one of 'ci', 'full'" in result.stderr


def tiny_har_baseline(monkeypatch, band):
    """har-gru at a budget of seconds, with the band given (the baselines file is the real one otherwise)."""
    original = reproduce_module.load_baselines

    def tiny():
        baselines = original()
        baselines["har-gru"].budgets["ci"].band = band
        baselines["har-gru"].budgets["ci"].set += [
            "train.epochs=1",
            "model.conv_layers=0",
            "model.layers=1",
            "model.units=4",
        ]
        return baselines

    monkeypatch.setattr(reproduce_module, "load_baselines", tiny)


def test_a_metric_outside_its_band_is_a_regression(tmp_path, monkeypatch):
    # A band no model can reach: the exit code and the line CI reads must say so.
    tiny_har_baseline(monkeypatch, (1.5, 2.0))
    result = invoke("reproduce", "har-gru", "--out", str(tmp_path))
    assert result.exit_code == REGRESSION_EXIT_CODE
    assert "REGRESSION" in result.stdout and "har-gru left the expected band" in result.stderr


@pytest.mark.xdist_group(name="journey")
def test_seeds_train_from_scratch_and_the_band_is_checked_on_their_mean(journey, tmp_path):
    """The documented `reproduce har-gru --budget ci --seeds 1,2,3` ran in the journey: one run per seed,
    their ensemble, and the line a user reads (mean ± std over the seeds; the ensemble's score)."""
    import re

    import numpy as np

    words = ["reproduce", "har-gru", "--budget", "ci", "--seeds", "1,2,3"]
    result = result_of(journey, words)
    assert result["exit_code"] == 0, result["output"]
    shown = re.search(r"(\d\.\d{4}) ± (\d\.\d{4}) \(3 seeds; ensemble (\d\.\d{4})\)", result["stdout"])
    assert shown, result["stdout"]
    mean, std, ensemble_score = map(float, shown.groups())
    out = journey / "models" / "reproduce" / "har-gru-ci"
    values = []
    for seed in (1, 2, 3):
        run = out / f"run-seed-{seed}"
        assert f"seed: {seed}" in (run / "config.yaml").read_text()
        values.append(json.loads((run / "metrics-test.json").read_text())["accuracy"])
    histories = {(out / f"run-seed-{seed}" / "history.csv").read_text() for seed in (1, 2, 3)}
    assert len(histories) == 3  # each seed trained from scratch, its own way
    assert mean == pytest.approx(np.mean(values), abs=1e-4) and std == pytest.approx(np.std(values, ddof=1), abs=1e-4)
    ensemble = json.loads((out / "ensemble" / "provenance.json").read_text())
    assert ensemble["ensemble_of"] == [str((out / f"run-seed-{seed}").resolve()) for seed in (1, 2, 3)]
    assert ensemble_score == pytest.approx(
        json.loads((out / "ensemble" / "metrics-test.json").read_text())["accuracy"], abs=1e-4
    )
    repeated = invoke("reproduce", "har-gru", "--out", tmp_path, "--seeds", "1,1")
    assert repeated.exit_code == 2 and "Traceback" not in repeated.output
