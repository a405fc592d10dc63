"""Every command through Typer's CliRunner, on small real-layout data, plus the real HAPT data."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers.cli import invoke
from helpers.data import write_classroom_folder, write_long_csv, write_series_csv, write_uci_folder
from helpers.examples import settings
from helpers.training import TINY_GRU

TINY = settings(TINY_GRU)  # the budget of conftest's shared activity run


def assert_one_line_error(result, exit_code: int, fragment: str) -> None:
    assert result.exit_code == exit_code, result.output
    # Progress lines may come before it; the problem itself is one line, the last one.
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert fragment in errors[0]
    assert "Traceback" not in result.output and "WARNING" not in result.output


def test_help_does_not_import_tensorflow():
    """Nor NumPy or pandas: every task's prepare command is listed from its light card."""
    code = (
        "import sys; from typer.testing import CliRunner; from dltrain.cli.app import app\n"
        "for args in (['--help'], ['prepare', '--help'], ['prepare', 'har', '--help'], ['prepare', 'retina', '-h'],\n"
        "             ['train', '--help']):\n"
        "    result = CliRunner().invoke(app, args); assert result.exit_code == 0, result.output\n"
        "heavy = [name for name in ('tensorflow', 'keras', 'numpy', 'pandas') if name in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.startswith("dltrain ")


# ---------------------------------------------------------------------------------------------
# prepare
# ---------------------------------------------------------------------------------------------


def test_prepare_uci_folder(tmp_path):
    write_uci_folder(tmp_path / "raw", windows_per_subject=6)
    result = invoke(
        "prepare", "har", tmp_path / "raw" / "UCI HAR Dataset", "--out", tmp_path / "data", "--val-fraction", "0.2"
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "data" / "meta.json").read_text())
    assert meta["task"] == "har" and meta["input_shape"] == [32, 9]
    assert meta["split_subjects"]["test"] == [2, 4]
    assert meta["split_subjects"]["val"] == [7] or len(meta["split_subjects"]["val"]) == 1
    assert not set(meta["split_subjects"]["val"]) & set(meta["split_subjects"]["train"])
    assert meta["splits"] == {"train": 24, "val": 6, "test": 12}
    train = np.load(tmp_path / "data" / "train.npz", allow_pickle=False)
    # Standardisation statistics come from the train windows only.
    np.testing.assert_allclose(
        meta["normalization"]["mean"], train["x"].reshape(-1, 9).mean(axis=0), rtol=1e-4, atol=1e-5
    )


def test_prepare_long_csv_splits_by_subject(tmp_path):
    path = write_long_csv(tmp_path / "wisdm.csv", subjects=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
    result = invoke("prepare", "har", path, "--out", tmp_path / "data", "--window", "32")
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "data" / "meta.json").read_text())
    subjects = meta["split_subjects"]
    assert len(subjects["val"]) == 2 and len(subjects["test"]) == 2 and len(subjects["train"]) == 6
    assert not (set(subjects["train"]) & set(subjects["val"])) and not (set(subjects["train"]) & set(subjects["test"]))
    assert meta["step"] == 16 and meta["classes"] == ["Jogging", "Sitting", "Walking"]


def test_prepare_real_hapt_recordings(tmp_path):
    result = invoke("prepare", "har", "hapt", "--out", tmp_path / "hapt", "--channels", "raw")
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "hapt" / "meta.json").read_text())
    assert meta["split_subjects"]["test"] == [2, 4, 9, 10, 12, 13, 18, 20, 24]  # UCI HAR's test volunteers
    assert not set(meta["split_subjects"]["val"]) & set(meta["split_subjects"]["train"])
    assert meta["input_shape"] == [128, 6]
    assert meta["classes"][0] == "WALKING" and len(meta["classes"]) == 6
    total = sum(meta["splits"].values())
    assert 10000 < total < 11000  # UCI HAR has 10,299 windows cut the same way
    assert min(meta["class_counts"]["test"].values()) > 300


@pytest.mark.parametrize(
    ("make_source", "extra", "exit_code", "fragment"),
    [
        (lambda root: root / "absent", [], 1, "no such file or folder"),
        (lambda root: (root / "empty").mkdir() or root / "empty", [], 1, "no CSV series found"),
        (lambda root: write_classroom_folder(root / "c"), ["--val-fraction", "1.5"], 2, "--val-fraction 1.5"),
        (lambda root: write_classroom_folder(root / "c"), ["--window", "1"], 2, "--window"),
        (lambda root: write_long_csv(root / "l.csv"), ["--label-column", "kind"], 1, "no column 'kind'"),
        (lambda root: write_long_csv(root / "l.csv"), ["--window", "5000"], 1, "shorter than the window of 5000"),
        (lambda root: write_long_csv(root / "l.csv"), ["--channels", "x,q"], 2, "has no channel(s) q"),
    ],
)
def test_prepare_errors_leave_no_data_dir(tmp_path, make_source, extra, exit_code, fragment):
    source = make_source(tmp_path)
    result = invoke("prepare", "har", source, "--out", tmp_path / "data", *extra)
    assert_one_line_error(result, exit_code, fragment)
    assert not (tmp_path / "data").exists()
    assert not [path for path in tmp_path.iterdir() if ".partial" in path.name]


def test_prepare_non_numeric_cell(tmp_path):
    root = write_classroom_folder(tmp_path / "c")
    path = root / "train" / "a02" / "series_001.csv"
    frame = pd.read_csv(path, index_col=0).astype(object)
    frame.iloc[3, 0] = "abc"
    frame.to_csv(path)
    result = invoke("prepare", "har", root, "--out", tmp_path / "data")
    assert_one_line_error(result, 1, "series_001.csv: column 'feature_0' row 4: 'abc' is not a number")
    assert not (tmp_path / "data").exists()


def test_prepare_ragged_csv(tmp_path):
    root = write_classroom_folder(tmp_path / "c")
    path = root / "train" / "a01" / "series_000.csv"
    lines = path.read_text().splitlines()
    lines[4] += ",7.5"
    path.write_text("\n".join(lines) + "\n")
    result = invoke("prepare", "har", root, "--out", tmp_path / "data")
    assert_one_line_error(result, 1, "series_000.csv: not a readable CSV")


def test_prepare_refuses_to_overwrite_without_force(tmp_path, classroom_folder):
    out = tmp_path / "data"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    result = invoke("prepare", "har", classroom_folder, "--out", out)
    assert_one_line_error(result, 2, "--force")
    assert (out / "precious.txt").read_text() == "keep me"
    # --force replaces only a DATA_DIR dltrain wrote: a folder of other files is refused by name.
    assert_one_line_error(invoke("prepare", "har", classroom_folder, "--out", out, "--force"), 2, "precious.txt")
    assert (out / "precious.txt").read_text() == "keep me"
    (out / "precious.txt").unlink()
    assert invoke("prepare", "har", classroom_folder, "--out", out).exit_code == 0
    assert invoke("prepare", "har", classroom_folder, "--out", out, "--window", "8", "--force").exit_code == 0
    assert json.loads((out / "meta.json").read_text())["window"] == 8


# ---------------------------------------------------------------------------------------------
# train / evaluate / predict
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(activity_run):
    """conftest's tiny run (TINY_GRU, as TINY here), shared by the train/evaluate/predict tests."""
    return activity_run


def test_train_writes_a_complete_run(trained):
    run = trained["run"]
    for name in (
        "config.yaml",
        "model.keras",
        "history.csv",
        "provenance.json",
        "metrics-val.json",
        "learning-curves.png",
        "confusion-matrix-val.png",
    ):
        assert (run / name).is_file(), name
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["units"] == 8 and config["train"]["epochs"] == 2
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 2 and {"loss", "val_loss", "accuracy", "val_accuracy", "learning_rate"} <= set(
        history.columns
    )
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["status"] == "complete"
    assert provenance["seed"] == 42 and provenance["device"]["type"] in {"CPU", "GPU"}
    assert set(provenance["versions"]) >= {"python", "tensorflow", "keras"}
    assert provenance["precision"] == "float32" and provenance["xla"] in (True, False)
    assert provenance["data"]["meta"]["task"] == "har"


def test_a_short_run_with_the_preset_and_a_batch_larger_than_the_data(trained, tmp_path):
    """`--set train.epochs=2` with the har-gru preset (a 10-epoch warm-up) trains, a batch larger
    than the 48 training windows is clamped, and an epoch is made of enough passes for the preset's
    50 steps; config.yaml and provenance.json record the values used."""
    run = tmp_path / "short"
    result = invoke(
        "train",
        trained["data"],
        "--out",
        run,
        "--set",
        "train.epochs=2",
        "--set",
        "train.batch_size=100000",
        "--set",
        "model.units=8",
        "--set",
        "model.layers=1",
    )
    assert result.exit_code == 0, result.output
    assert "using 0 (a quarter of them)" in result.stderr and "using 48" in result.stderr
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["train"]["epochs"] == 2 and config["early_stopping"]["start_from_epoch"] == 0
    assert config["train"]["batch_size"] == 48
    assert len(pd.read_csv(run / "history.csv")) == 2
    # the preset's train.min_steps_per_epoch: one batch of 48 is one step, so an epoch is 50 passes
    assert "an epoch is 50 passes over the 48 training samples, 50 steps of 48" in result.stderr
    recorded = json.loads((run / "provenance.json").read_text())["input"]
    assert recorded["passes_per_epoch"] == 50 and recorded["steps_per_epoch"] == 50


def test_evaluate_json_prints_only_one_object(trained):
    result = invoke("evaluate", trained["run"], "--split", "val", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert {"accuracy", "macro_f1", "confusion_matrix", "classes"} <= set(metrics)
    assert metrics["classes"] == ["a01", "a02", "a03"]
    assert np.asarray(metrics["confusion_matrix"]).sum() == 18
    assert 0 <= metrics["accuracy"] <= 1
    assert json.loads((trained["run"] / "metrics-val.json").read_text())["accuracy"] == metrics["accuracy"]


def test_evaluate_table(trained):
    result = invoke("evaluate", trained["run"], "--split", "val")
    assert result.exit_code == 0, result.output
    assert "precision" in result.stdout and "a02" in result.stdout


def test_evaluate_missing_split(trained):
    result = invoke("evaluate", trained["run"], "--split", "test")
    assert_one_line_error(result, 1, "has no test split")


def test_predict_on_a_source_folder(trained, tmp_path):
    out = tmp_path / "predictions.csv"
    result = invoke("predict", trained["run"], trained["source"], "--out", out)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert list(frame.columns[:2]) == ["id", "activity"]
    assert list(frame.columns[2:]) == ["prob_a01", "prob_a02", "prob_a03"]
    assert len(frame) == 3 * 16 + 3 * 6 + 5  # labels ignored; every series, the unlabelled test/ too
    assert set(frame["activity"]) <= {"a01", "a02", "a03"}
    np.testing.assert_allclose(frame.iloc[:, 2:].sum(axis=1), 1.0, atol=1e-4)


def test_predict_on_a_data_dir_uses_the_unlabelled_split(trained, tmp_path):
    out = tmp_path / "unlabelled.csv"
    result = invoke("predict", trained["run"], trained["data"], "--out", out, "--no-probabilities")
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["id", "activity"]
    assert sorted(frame["id"]) == [f"test/unknown_{index:03d}.csv" for index in range(5)]


def test_predict_unknown_class_folder(trained, tmp_path):
    source = write_classroom_folder(tmp_path / "other", classes=("a01", "a07"), with_test=False)
    out = tmp_path / "p.csv"
    result = invoke("predict", trained["run"], source, "--out", out)
    assert_one_line_error(result, 1, "a07 unknown to the model")
    assert not out.exists()


def test_predict_with_a_split_of_a_missing_input_says_it_is_missing(trained, tmp_path):
    result = invoke("predict", trained["run"], tmp_path / "absent", "--split", "test", "--out", tmp_path / "p.csv")
    assert_one_line_error(result, 1, "no such file or folder")


def test_predict_series_of_another_length(trained, tmp_path):
    source = tmp_path / "longer"
    write_series_csv(source / "a01" / "x.csv", np.zeros((40, 3)), ["feature_0", "feature_1", "feature_2"])
    result = invoke("predict", trained["run"], source, "--out", tmp_path / "p.csv")
    assert_one_line_error(result, 1, "model takes windows of 16")


def test_predict_from_a_folder_that_is_not_a_run(tmp_path, classroom_folder):
    result = invoke("predict", tmp_path, classroom_folder, "--out", tmp_path / "p.csv")
    assert_one_line_error(result, 1, "is not a dltrain run")


def test_evaluate_corrupt_model(trained, tmp_path):
    import shutil

    broken = tmp_path / "broken-run"
    shutil.copytree(trained["run"], broken)
    (broken / "model.keras").write_bytes(b"not a zip archive")
    result = invoke("evaluate", broken, "--split", "val")
    assert_one_line_error(result, 1, "cannot be loaded")


def test_print_config_shows_the_resolved_yaml(trained):
    result = invoke("train", trained["data"], "--print-config", "--set", "model.units=99")
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(result.stdout)
    assert config["model"]["units"] == 99 and config["optimizer"]["name"] == "adam"
    # What auto became on this machine follows, as comments: the output is still a config file.
    assert "# on this machine:" in result.stdout
    assert "#   train.mixed_precision = auto -> float32 (tensorflow on CPU)" in result.stdout
    assert "#   train.jit_compile = auto -> XLA off (tensorflow on CPU)" in result.stdout
    assert "#   GRU kernel -> generic (no cuDNN)" in result.stdout
    assert "#   augment.placement = auto -> model (tensorflow on CPU)" in result.stdout  # activity: a layer, always
    refused = invoke("train", trained["data"], "--print-config", "--set", "train.strategy=mirrored",
                     "--set", "train.jit_compile=true")  # fmt: skip
    assert_one_line_error(refused, 2, "does not run under train.strategy=mirrored")


@pytest.mark.parametrize(
    ("extra", "exit_code", "fragment"),
    [
        (["--set", "model.colour=red"], 2, "unknown config key 'model.colour'"),
        (["--set", "optimizer.learning_rate=-1"], 2, "optimizer.learning_rate"),
        (["--config", "nope"], 2, "unknown config 'nope'"),
    ],
)
def test_train_errors_leave_no_run_dir(trained, tmp_path, extra, exit_code, fragment):
    run = tmp_path / "run"
    result = invoke("train", trained["data"], "--out", run, *extra)
    assert_one_line_error(result, exit_code, fragment)
    assert not run.exists()


def test_train_on_a_folder_that_is_not_prepared(tmp_path, classroom_folder):
    result = invoke("train", classroom_folder, "--out", tmp_path / "run")
    assert_one_line_error(result, 1, "is not a prepared DATA_DIR")
    assert not (tmp_path / "run").exists()


def test_train_refuses_an_existing_run_without_force(trained):
    result = invoke("train", trained["data"], "--out", trained["run"], *TINY)
    assert_one_line_error(result, 2, "--force")
    assert json.loads((trained["run"] / "provenance.json").read_text())["status"] == "complete"


def test_evaluate_on_an_incompatible_data_dir(trained, tmp_path):
    write_uci_folder(tmp_path / "raw")
    assert invoke("prepare", "har", tmp_path / "raw", "--out", tmp_path / "uci").exit_code == 0
    result = invoke("evaluate", trained["run"], "--data", tmp_path / "uci", "--split", "test")
    assert_one_line_error(result, 1, "does not match the run's data: classes")


def test_interrupted_run_is_not_evaluated(trained, tmp_path):
    import shutil

    partial = tmp_path / "partial-run"
    shutil.copytree(trained["run"], partial)
    provenance = json.loads((partial / "provenance.json").read_text())
    provenance["status"] = "interrupted"
    (partial / "provenance.json").write_text(json.dumps(provenance))
    result = invoke("evaluate", partial, "--split", "val")
    assert_one_line_error(result, 1, f"training was interrupted; continue it with 'dltrain train --resume {partial}'")
    (partial / "last.keras").unlink()  # interrupted before its first epoch ended: nothing to resume
    assert_one_line_error(invoke("evaluate", partial, "--split", "val"), 1, "training did not finish")


def test_warm_up_epochs_are_never_kept_as_the_best_model(trained, tmp_path):
    run = tmp_path / "warm"
    result = invoke(
        "train",
        trained["data"],
        "--out",
        run,
        *TINY,
        "--set",
        "train.epochs=3",
        "--set",
        "early_stopping.start_from_epoch=2",
        "--set",
        "early_stopping.patience=1",
    )
    assert result.exit_code == 0, result.output
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["epochs_run"] == 3 and provenance["best_epoch"] == 3  # epochs 1-2 are warm-up
    assert (run / "model.keras").is_file()


def test_predict_on_a_flat_folder_of_unlabelled_series(trained, tmp_path):
    out = tmp_path / "flat.csv"
    result = invoke("predict", trained["run"], trained["source"] / "test", "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(pd.read_csv(out)["id"]) == [f"unknown_{index:03d}.csv" for index in range(5)]


def test_error_messages_keep_square_brackets(tmp_path):
    # A message quoting user data such as "[bold]" or "['x']" must reach the user as written.
    root = write_classroom_folder(tmp_path / "c", with_test=False)
    write_series_csv(root / "train" / "a01" / "odd.csv", np.zeros((16, 2)), ["[bold]", "x"])
    result = invoke("prepare", "har", root, "--out", tmp_path / "data")
    assert_one_line_error(result, 1, "['[bold]', 'x']")
