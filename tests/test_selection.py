"""Numbers a reviewer can trust: choices are made without the test split (subject-grouped folds,
training that scores validation only), and what validation steered is labelled wherever it is shown."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from helpers.cli import invoke
from helpers.data import write_uci_folder

from dltrain.data.datadir import DataDir
from dltrain.tasks.har.folds import write_subject_folds
from dltrain.tasks.har.prepare import standardisation

TINY = [
    "model.units=4",
    "model.layers=1",
    "model.conv_layers=0",
    "train.batch_size=8",
    "train.epochs=2",
    "train.min_steps_per_epoch=0",
    "early_stopping.start_from_epoch=0",
]


def sets(settings):
    return [part for setting in settings for part in ("--set", setting)]


@pytest.fixture(scope="module")
def activity_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("selection")
    subjects = {"train": [1, 3, 5, 6, 7, 8, 11, 14], "test": [2, 4]}
    source = write_uci_folder(root / "raw", windows_per_subject=12, subjects=subjects)
    assert invoke("prepare", "har", source, "--out", root / "data").exit_code == 0
    return root / "data"


def test_folds_deal_the_train_and_val_subjects_and_leave_the_test_subjects_out(activity_data, tmp_path):
    data = DataDir.open(activity_data)
    pool = set(data.split("train").subjects.tolist()) | set(data.split("val").subjects.tolist())
    folds = [DataDir.open(path) for path in write_subject_folds(data, 3, tmp_path / "folds")]
    held = [set(fold.split("val").subjects.tolist()) for fold in folds]
    for fold, validation in zip(folds, held):
        training = set(fold.split("train").subjects.tolist())
        assert not training & validation and training | validation == pool  # no subject on both sides
        assert not fold.has_split("test") and not (training | validation) & {2, 4}
        mean, std = standardisation(fold.split("train").x)  # each fold standardises on its own training windows
        np.testing.assert_allclose(fold.meta.normalization.mean, mean, rtol=1e-5)
        np.testing.assert_allclose(fold.meta.normalization.std, std, rtol=1e-5)
    assert sorted(subject for validation in held for subject in validation) == sorted(pool)  # each held out once
    stamp = (tmp_path / "folds" / "fold-1" / "meta.json").stat().st_mtime_ns
    write_subject_folds(data, 3, tmp_path / "folds")  # written from the same DATA_DIR: kept
    assert (tmp_path / "folds" / "fold-1" / "meta.json").stat().st_mtime_ns == stamp


def test_too_many_folds_for_the_subjects_is_one_line(activity_data, tmp_path):
    result = invoke("sweep", activity_data, "--grid", "model.units=4,8", "--folds", "9", "--out", tmp_path / "s")
    assert result.exit_code == 2 and "--folds 9: the train and val splits hold only 8 subjects" in result.stderr


def fold_command(activity_data, out):
    return ["sweep", activity_data, "--grid", "model.units=4,8", "--folds", "2", "--out", out, *sets(TINY)]


@pytest.fixture(scope="module")
def fold_sweep(activity_data, tmp_path_factory):
    """Two points, two subject-grouped folds each; the tests below read it (one re-runs it: every run kept)."""
    out = tmp_path_factory.mktemp("fold-sweep") / "sweep"
    result = invoke(*fold_command(activity_data, out))
    assert result.exit_code == 0, result.output
    return out


def test_a_sweep_over_folds_compares_points_by_their_mean_validation_score(activity_data, fold_sweep, tmp_path):
    out, command = fold_sweep, fold_command(activity_data, fold_sweep)
    table = pd.read_csv(out / "comparison.csv")
    assert table["point"].tolist() == ["model.units-4", "model.units-8"] and (table["folds"] == 2).all()
    for _, row in table.iterrows():
        per_fold = json.loads(row["val accuracy per fold"])
        assert row["val accuracy mean*"] == pytest.approx(np.mean(per_fold), abs=1e-4) and row["status"] == "complete"
        assert row["val accuracy std"] == pytest.approx(np.std(per_fold, ddof=1), abs=1e-4)
        kept = [
            json.loads((out / row["point"] / f"fold-{fold}" / "provenance.json").read_text())["best_epoch"]
            for fold in (1, 2)
        ]
        assert row["kept epoch (median)"] == int(np.median(kept).round())  # what refit --epochs takes
    runs = sorted(path.relative_to(out).as_posix() for path in out.glob("model.units-*/fold-*"))
    assert runs == [f"model.units-{units}/fold-{fold}" for units in (4, 8) for fold in (1, 2)]
    assert not list(out.rglob("metrics-test.json"))  # nothing in a sweep looks at the test subjects
    assert (out / "comparison.png").stat().st_size > 10_000
    assert invoke(*command).stderr.count("complete already, kept") == 4
    # Three folds deal the subjects anew: the 2-fold runs were trained on other data, never kept as these
    # (on a copy: the refused sweep deals its folds before it finds the runs it would replace)
    three = fold_command(activity_data, shutil.copytree(out, tmp_path / "copy"))
    three[three.index("--folds") + 1] = "3"
    again = invoke(*three)
    assert again.exit_code == 2 and "holds another run" in again.stderr


def test_a_point_missing_a_fold_gets_no_mean(fold_sweep):
    from dltrain.runs.compare import fold_comparison_frame, read_run_record

    runs = [read_run_record(fold_sweep / "model.units-4" / f"fold-{fold}") for fold in (1, 2)]
    frame = fold_comparison_frame({"complete": runs, "one fold": runs[:1]}, folds=2)
    assert frame["status"].tolist() == ["complete", "incomplete: 1 of 2 folds scored"]
    assert np.isfinite(frame["val accuracy mean*"][0]) and np.isnan(frame["val accuracy mean*"][1])


def test_derived_data_never_replaces_a_folder_dltrain_did_not_write(activity_data, tmp_path):
    from dltrain.core.errors import UsageError

    mine = tmp_path / "folds" / "fold-1"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="did not write"):
        write_subject_folds(DataDir.open(activity_data), 2, tmp_path / "folds")
    assert (mine / "notes.txt").read_text() == "mine"


def test_the_lab_never_writes_inside_its_data(activity_data):
    before = sorted(path.name for path in activity_data.iterdir())
    result = invoke("lab", "loss", "--data", activity_data, "--out", activity_data / "lab")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert sorted(path.name for path in activity_data.iterdir()) == before


def test_training_scores_validation_only_and_labels_what_it_steered(activity_data, tmp_path):
    run = tmp_path / "run"
    result = invoke("train", activity_data, "--out", run, *sets(TINY))
    assert result.exit_code == 0, result.output
    assert (
        not (run / "metrics-test.json").exists()
        and "test" not in json.loads((run / "provenance.json").read_text())["metrics"]
    )
    steered = json.loads((run / "metrics-val.json").read_text())["steered_by_this_split"]
    assert any("kept epoch" in use for use in steered)
    assert "not held out" in result.stderr and f"dltrain evaluate {run} --split test" in result.stderr


def test_compare_keeps_validation_and_test_apart_and_fits_80_columns(activity_data, tmp_path):
    from rich.console import Console

    from dltrain.runs.compare import compare_runs, comparison_table

    runs = []
    for units in (4, 8):
        runs.append(tmp_path / f"a-rather-long-run-name-with-{units}-units")
        settings = [*TINY, f"model.units={units}", f"optimizer.learning_rate={0.001 * units}"]
        assert invoke("train", activity_data, "--out", runs[-1], *sets(settings)).exit_code == 0
    assert invoke("evaluate", runs[0], "--split", "test", "--json").exit_code == 0
    frame = compare_runs(runs)
    columns = list(frame.columns)
    assert columns.index("val accuracy*") < columns.index("test accuracy") == len(columns) - 1
    assert frame["run"].tolist() == [run.name for run in runs]  # the order given, never ranked by test
    assert np.isnan(frame["test accuracy"][1])  # not evaluated: no test score is made up
    console = Console(width=80, record=True)
    console.print(comparison_table(frame, 80))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text  # names fold onto more lines, never cut
    assert all(run.name[:20] in text for run in runs) and "not a held-out score" in " ".join(text.split())
    listed = json.loads(invoke("compare", *runs, "--json").stdout)
    assert [row["run"] for row in listed] == [run.name for run in runs] and "val accuracy*" in listed[0]


def test_a_run_is_never_written_inside_another_run(activity_data, tmp_path):
    """A sweep whose points are `<cell>/seed-<n>` (the lab's layout) over an --out where `<cell>` is a run
    of an earlier layout: refused without --force, the old run replaced with it."""
    from dltrain.config.loading import load_config
    from dltrain.core.errors import UsageError
    from dltrain.experiments.sweep import GridPoint, train_points

    out = tmp_path / "lab"
    assert invoke("train", activity_data, "--out", out / "cell", *sets(TINY)).exit_code == 0
    point = GridPoint("cell/seed-1", [*TINY, "train.seed=1"], load_config("har-gru", [*TINY, "train.seed=1"]))
    with pytest.raises(UsageError, match="holds a run, and .*seed-1 would go inside it"):
        train_points(activity_data, "har-gru", [point], out)
    assert (out / "cell" / "config.yaml").is_file() and not (out / "cell" / "seed-1").exists()
    assert train_points(activity_data, "har-gru", [point], out, force=True) == []
    assert not (out / "cell" / "config.yaml").exists() and (out / "cell" / "seed-1" / "model.keras").is_file()
