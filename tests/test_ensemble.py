"""`dltrain ensemble`: runs of one task on the same data averaged into one run folder, which the
other commands take like a trained run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers.cli import invoke
from helpers.examples import settings
from helpers.training import TINY_CNN, TINY_GRU


@pytest.fixture(scope="module")
def members(data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("members")
    runs = []
    for seed in (1, 2):
        run = root / f"seed-{seed}"
        result = invoke("train", data_dir, "--out", run, *settings([*TINY_GRU, f"train.seed={seed}"]))
        assert result.exit_code == 0, result.output
        runs.append(run)
    return runs


def test_the_ensemble_averages_its_members_probabilities_and_is_a_run_like_any_other(members, data_dir, tmp_path):
    from dltrain.data.datadir import DataDir
    from dltrain.runs.rundir import Run

    out = tmp_path / "ensemble"
    result = invoke("ensemble", *members, "--out", out)
    assert result.exit_code == 0, result.output
    assert "an ensemble of 2 runs: the mean of their class probabilities" in result.output
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["ensemble_of"] == [str(member.resolve()) for member in members]
    assert provenance["status"] == "complete" and "accuracy" in provenance["metrics"]["val"]
    windows = DataDir.open(data_dir).split("val").x
    averaged = np.mean([Run.open(member).load_model().predict(windows, verbose=0) for member in members], axis=0)
    np.testing.assert_allclose(Run.open(out).load_model().predict(windows, verbose=0), averaged, atol=1e-5)
    for command in (
        ["evaluate", out, "--split", "val"],
        ["predict", out, data_dir, "--split", "val", "--out", tmp_path / "predictions.csv"],
        ["compare", *members, out],
        ["runs", tmp_path],
        ["export", out, "--format", "saved_model", "--out", tmp_path / "exported"],
    ):
        ran = invoke(*command)
        assert ran.exit_code == 0, (command, ran.output)
    assert (tmp_path / "predictions.csv").stat().st_size > 0
    refit = invoke("refit", out, "--epochs", "1", "--out", tmp_path / "refit")
    assert refit.exit_code == 2 and "is an ensemble" in refit.output and not (tmp_path / "refit").exists()


def test_what_cannot_be_an_ensemble_is_refused_in_one_line(members, retina_run, tmp_path):
    cases = [
        ([members[0]], "at least two RUN_DIRs"),
        ([members[0], members[0]], "is named twice"),
        ([members[0], retina_run["run"]], "was trained on other data"),
    ]
    for runs, fragment in cases:
        result = invoke("ensemble", *runs, "--out", tmp_path / "ensemble")
        assert result.exit_code != 0 and fragment in result.output, result.output
        assert "Traceback" not in result.output and not (tmp_path / "ensemble").exists()
    into_a_member = invoke("ensemble", *members, "--out", members[1], "--force")
    assert into_a_member.exit_code != 0 and (members[1] / "history.csv").is_file()


def test_a_regression_ensemble_tunes_its_own_cut_points(retina_run, tmp_path):
    second = tmp_path / "second"
    trained = invoke("train", retina_run["data"], "--out", second, *TINY_CNN, "--set", "train.seed=7")
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "ensemble"
    result = invoke("ensemble", retina_run["run"], second, "--out", out)
    assert result.exit_code == 0, result.output
    assert "the mean of their outputs" in result.output  # retina-cnn's regression head
    provenance = json.loads((out / "provenance.json").read_text())
    assert len(provenance["thresholds"]["none"]) == 4  # tuned on validation for the averaged outputs
    scored = invoke("evaluate", out, "--split", "test")
    assert scored.exit_code == 0, scored.output
