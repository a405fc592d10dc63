"""The retina journey through the CLI on tiny images: train, evaluate (kappa, TTA), predict."""

from __future__ import annotations

import json

import pandas as pd
from conftest import fundus_jpeg, invoke, kaggle_folder


def test_regression_run_keeps_its_tuned_thresholds(retina_run):
    provenance = json.loads((retina_run["run"] / "provenance.json").read_text())
    assert provenance["config_source"] == "retina-cnn"
    thresholds = provenance["thresholds"]
    assert len(thresholds) == 4 and thresholds == sorted(thresholds)
    history = pd.read_csv(retina_run["run"] / "history.csv")
    assert "val_kappa" in history.columns and len(history) == 2


def test_evaluate_json_has_quadratic_weighted_kappa(retina_run):
    result = invoke("evaluate", str(retina_run["run"]), "--split", "test", "--json", "--tta")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert {"accuracy", "macro_f1", "confusion_matrix", "classes", "quadratic_weighted_kappa"} <= set(metrics)
    assert -1 <= metrics["quadratic_weighted_kappa"] <= 1 and metrics["tta"] is True
    assert len(metrics["confusion_matrix"]) == 5


def test_predict_raw_folder_writes_the_kaggle_submission_format(retina_run, tmp_path):
    photographs = tmp_path / "photographs"
    for name in ("5_left", "5_right", "6_left"):
        fundus_jpeg(photographs / f"{name}.jpeg", width=900, height=600)
    (photographs / "7_right.jpeg").write_bytes(b"broken")
    out = tmp_path / "submission.csv"
    result = invoke("predict", str(retina_run["run"]), str(photographs), "--out", str(out))
    assert result.exit_code == 0, result.output
    submission = pd.read_csv(out)
    assert list(submission.columns) == ["image", "level"]
    assert sorted(submission["image"]) == ["5_left", "5_right", "6_left"]  # the unreadable one is left out
    assert submission["level"].between(0, 4).all() and submission["level"].dtype.kind == "i"
    assert "7_right.jpeg" in result.stderr


def test_predict_prepared_data_dir_uses_the_unlabelled_split(retina_run, tmp_path):
    out = tmp_path / "test.csv"
    result = invoke("predict", str(retina_run["run"]), str(retina_run["data"]), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(pd.read_csv(out)["image"]) == ["900_left", "900_right"]


def test_gru_on_images_is_refused(retina_run, tmp_path):
    result = invoke("train", str(retina_run["data"]), "--out", str(tmp_path / "r"), "--config", "har-gru")
    assert result.exit_code == 2 and "does not fit retina data" in result.stderr
    assert not (tmp_path / "r").exists()


def test_512_pixel_smoke_run_of_two_images(tmp_path):
    source = kaggle_folder(tmp_path / "kaggle", patients=2, with_test=False)
    data, run = tmp_path / "data", tmp_path / "run"
    prepared = invoke(
        "prepare",
        "retina",
        str(source),
        "--out",
        str(data),
        "--size",
        "512",
        "--val-fraction",
        "0.5",
        "--test-fraction",
        "0",
        "--workers",
        "1",
    )
    assert prepared.exit_code == 0, prepared.output
    assert json.loads((data / "meta.json").read_text())["splits"] == {"train": 2, "val": 2}
    result = invoke("train", str(data), "--out", str(run), "--set", "train.epochs=1", "--set", "train.batch_size=2")
    assert result.exit_code == 0, result.output
    assert json.loads((run / "provenance.json").read_text())["data"]["meta"]["input_shape"] == [512, 512, 3]
