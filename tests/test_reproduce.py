"""`dltrain reproduce` at the CI budget: both baselines land in their bands, and the same seed gives
the same metrics twice over (deterministic ops). These are the slowest tests: each trains twice."""

from __future__ import annotations

import json

import pytest
from conftest import invoke

from dltrain.cli.common import REGRESSION_EXIT_CODE
from dltrain.runs.reproduce import load_baselines


@pytest.mark.parametrize("name", sorted(load_baselines()))
def test_ci_budget_lands_in_its_band_and_repeats_exactly(tmp_path, name):
    measured = []
    for attempt in ("first", "second"):
        result = invoke("reproduce", name, "--budget", "ci", "--out", str(tmp_path / attempt), "--json")
        assert result.exit_code == 0, result.output
        (row,) = json.loads(result.stdout)
        assert row["status"] == "ok" and row["baseline"] == name
        low, high = load_baselines()[name].budgets["ci"].band
        assert low <= row["measured"] <= high
        history = (tmp_path / attempt / f"{name}-ci" / "run" / "history.csv").read_text()
        measured.append((row["measured"], history))
    assert measured[0] == measured[1]  # same metric, and the same history to the last digit


def test_reproduce_needs_names_or_all(tmp_path):
    result = invoke("reproduce", "--out", str(tmp_path))
    assert result.exit_code == 2 and "har-gru" in result.stderr
    result = invoke("reproduce", "lenet", "--out", str(tmp_path))
    assert result.exit_code == 2 and "unknown baseline 'lenet'; valid: har-gru, retina-cnn" in result.stderr
    result = invoke("reproduce", "har-gru", "--budget", "huge", "--out", str(tmp_path))
    assert result.exit_code == 2 and "'huge' is not one of 'ci', 'full'" in result.stderr


def test_a_metric_outside_its_band_is_a_regression(tmp_path, monkeypatch):
    # A band no model can reach: the exit code and the line CI reads must say so.
    import dltrain.runs.reproduce as reproduce_module

    original = reproduce_module.load_baselines

    def impossible_band():
        baselines = original()
        baselines["har-gru"].budgets["ci"].band = (1.5, 2.0)
        baselines["har-gru"].budgets["ci"].set += [
            "train.epochs=1",
            "model.conv_layers=0",
            "model.layers=1",
            "model.units=4",
        ]
        return baselines

    monkeypatch.setattr(reproduce_module, "load_baselines", impossible_band)
    result = invoke("reproduce", "har-gru", "--out", str(tmp_path))
    assert result.exit_code == REGRESSION_EXIT_CODE
    assert "REGRESSION" in result.stdout and "har-gru left the expected band" in result.stderr
