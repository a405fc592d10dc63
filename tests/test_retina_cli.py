"""The retina journey through the CLI on tiny images: train, evaluate (kappa, TTA), predict."""

from __future__ import annotations

import json

import pandas as pd
from helpers.cli import invoke
from helpers.data import fundus_jpeg, kaggle_folder


def test_regression_run_keeps_its_tuned_thresholds(retina_run):
    provenance = json.loads((retina_run["run"] / "provenance.json").read_text())
    assert provenance["config_source"] == "retina-cnn"
    thresholds = provenance["thresholds"]  # one set per TTA mode: averaged views shrink towards the middle
    assert set(thresholds) == {"none", "flips", "dihedral"}
    assert all(len(values) == 4 and values == sorted(values) for values in thresholds.values())
    history = pd.read_csv(retina_run["run"] / "history.csv")
    assert "val_kappa" in history.columns and len(history) == 2


def test_evaluate_json_has_quadratic_weighted_kappa(retina_run):
    for mode in ("none", "flips", "dihedral"):
        result = invoke("evaluate", str(retina_run["run"]), "--split", "test", "--json", "--tta", mode)
        assert result.exit_code == 0, result.output
        metrics = json.loads(result.stdout)
        assert {"accuracy", "macro_f1", "confusion_matrix", "classes", "quadratic_weighted_kappa"} <= set(metrics)
        assert -1 <= metrics["quadratic_weighted_kappa"] <= 1 and metrics["tta"] == mode
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
    # One row per image file: the unreadable one too, graded from the training set's commonest grade
    # (its fellow eye, 7_left, is absent), and listed with the reason beside the submission.
    assert sorted(submission["image"]) == ["5_left", "5_right", "6_left", "7_right"]
    assert submission["level"].between(0, 4).all() and submission["level"].dtype.kind == "i"
    filled = pd.read_csv(tmp_path / "submission-unreadable.csv")
    assert filled["image"].tolist() == ["7_right"] and "most common" in filled["filled_from"][0] and filled["reason"][0]
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


def test_an_unreadable_eye_takes_its_fellow_eyes_grade(retina_run, tmp_path):
    photographs = tmp_path / "photographs"
    fundus_jpeg(photographs / "8_left.jpeg", width=900, height=600, level=4)
    (photographs / "8_right.jpeg").write_bytes(b"broken")
    out = tmp_path / "submission.csv"
    assert invoke("predict", retina_run["run"], photographs, "--out", out).exit_code == 0
    grades = dict(pd.read_csv(out).itertuples(index=False))
    assert grades["8_right"] == grades["8_left"]
    assert pd.read_csv(tmp_path / "submission-unreadable.csv")["filled_from"].tolist() == ["8_left"]


def test_the_tta_views_are_the_rotations_and_mirrors():
    """A model that outputs its input's top-left pixel: each view brings another corner there."""
    import keras
    import numpy as np
    import tensorflow as tf

    from dltrain.tasks.retina.task import TTA_VIEWS, RetinaTask

    inputs = keras.Input((2, 2, 1))
    model = keras.Model(inputs, keras.layers.Flatten()(inputs)[:, :1])
    image = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32).reshape(1, 2, 2, 1)
    dataset = tf.data.Dataset.from_tensor_slices((image, np.zeros(1))).batch(1)
    views = RetinaTask()._view_outputs(model, dataset, TTA_VIEWS["dihedral"])[0, :, 0]
    expected = [
        np.rot90(np.fliplr(image[0, :, :, 0]) if view >= 4 else image[0, :, :, 0], view % 4)[0, 0] for view in range(8)
    ]
    np.testing.assert_array_equal(views, expected)
    assert sorted(views[list(TTA_VIEWS["flips"])]) == [1.0, 2.0, 3.0, 4.0]  # the four flips: each corner once


def test_eye_features_pair_each_image_with_its_fellow_eye():
    import numpy as np

    from dltrain.tasks.retina.blend import eye_features

    names = ["3_left", "3_right", "4_left", "no-eye-name"]
    features = eye_features(names, np.array([[1.0], [3.0], [2.0], [0.5]]))
    np.testing.assert_array_equal(features[:, 0], [1.0, 3.0, 2.0, 0.5])  # own
    np.testing.assert_array_equal(features[:, 1], [3.0, 1.0, 2.0, 0.5])  # fellow (none: its own)
    np.testing.assert_array_equal(features[:, 2], [0.0, 1.0, 0.0, 0.0])  # is_right
    assert features.shape == (4, 3)  # own - fellow would add nothing to the linear blend
    probabilities = np.array([[0.0, 0.0, 1.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(eye_features(["1_left", "1_right"], probabilities)[:, 0], [2.0, 0.5])  # expected grade


def test_blend_fits_both_eyes_and_evaluate_and_predict_use_it(retina_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(retina_run["run"], run)
    result = invoke("blend", run)
    assert result.exit_code == 0, result.output
    blend = json.loads((run / "blend.json").read_text())
    assert blend["features"] == ["own", "fellow", "is_right"] and len(blend["coefficients"]) == 3
    assert set(blend["validation_kappa"]) == {"per_image", "blended_out_of_fold"} and blend["tta"] == "none"
    metrics = json.loads(invoke("evaluate", run, "--split", "test", "--json").stdout)
    assert -1 <= metrics["blended_quadratic_weighted_kappa"] <= 1 and "quadratic_weighted_kappa" in metrics
    flips = json.loads(invoke("evaluate", run, "--split", "test", "--json", "--tta", "flips").stdout)
    assert "blended_quadratic_weighted_kappa" not in flips  # fitted on outputs without TTA: not applied to others
    out = tmp_path / "blended.csv"
    blended = invoke("predict", run, retina_run["data"], "--split", "test", "--out", out)
    assert blended.exit_code == 0 and "both eyes of each patient together" in blended.stderr
    assert (
        invoke(
            "predict", run, retina_run["data"], "--split", "test", "--out", tmp_path / "alone.csv", "--no-blend"
        ).exit_code
        == 0
    )
    mismatch = invoke("predict", run, retina_run["data"], "--out", tmp_path / "x.csv", "--tta", "flips")
    assert mismatch.exit_code == 2 and "--no-blend" in mismatch.stderr


def test_a_blend_fitted_with_tta_sets_the_default_mode_of_evaluate_and_predict(retina_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(retina_run["run"], run)
    assert invoke("blend", run, "--tta", "flips").exit_code == 0
    metrics = json.loads(invoke("evaluate", run, "--split", "test", "--json").stdout)
    assert metrics["tta"] == "flips" and "blended_quadratic_weighted_kappa" in metrics
    photographs = tmp_path / "photographs"
    fundus_jpeg(photographs / "5_left.jpeg", width=300, height=200)
    assert invoke("predict", run, photographs, "--out", tmp_path / "flips.csv").exit_code == 0
    mismatch = invoke("predict", run, photographs, "--out", tmp_path / "none.csv", "--tta", "none")
    assert mismatch.exit_code == 2 and "pass --tta flips, or --no-blend" in mismatch.stderr
    assert "grading photographs" not in mismatch.stderr  # refused before any photograph is read
    alone = invoke("predict", run, photographs, "--out", tmp_path / "alone.csv", "--no-blend")
    assert alone.exit_code == 0 and "--tta flips" not in alone.stderr  # each eye alone: no TTA unless asked


def test_a_blend_needs_two_grades_in_validation():
    import numpy as np
    import pytest

    from dltrain.core.errors import DataError
    from dltrain.tasks.retina.blend import fit_blend

    names = ["1_left", "1_right", "2_left", "2_right"]
    with pytest.raises(DataError, match="at least two grades"):
        fit_blend(names, np.array([[0.1], [0.2], [0.0], [0.3]]), np.zeros(4, np.int64))


def test_a_prepared_data_dir_gives_rows_to_the_test_photographs_prepare_rejected(tmp_path):
    source = kaggle_folder(tmp_path / "kaggle", patients=8)
    (source / "test" / "900_left.jpeg").write_bytes(b"not a jpeg")
    data, run = tmp_path / "data", tmp_path / "run"
    assert invoke("prepare", "retina", source, "--out", data, "--size", "32", "--workers", "1").exit_code == 0
    rejects = pd.read_csv(data / "rejects.csv", keep_default_na=False)
    assert rejects[rejects["image"] == "900_left"]["split"].tolist() == ["unlabelled"]
    tiny = ["model.conv_layers=1", "model.conv_filters=4", "model.dense_units=0", "train.epochs=1"]
    assert invoke("train", data, "--out", run, *[part for item in tiny for part in ("--set", item)]).exit_code == 0
    out = tmp_path / "submission.csv"
    assert invoke("predict", run, data, "--out", out).exit_code == 0
    submission = pd.read_csv(out)
    assert sorted(submission["image"]) == sorted(path.stem for path in (source / "test").iterdir())
    assert pd.read_csv(tmp_path / "submission-unreadable.csv")["filled_from"].tolist() == ["900_right"]
    (source / "test" / "900_left.jpeg").unlink()
    assert invoke("predict", run, source / "test", "--out", out, "--force").exit_code == 0
    assert not (tmp_path / "submission-unreadable.csv").exists()  # the old list described the old CSV


def test_two_photographs_of_one_name_are_refused(retina_run, tmp_path):
    photographs = tmp_path / "photographs"
    fundus_jpeg(photographs / "5_left.jpeg", width=300, height=200)
    fundus_jpeg(photographs / "more" / "5_left.jpg", width=300, height=200)
    result = invoke("predict", retina_run["run"], photographs, "--out", tmp_path / "s.csv")
    assert result.exit_code == 1 and "two photographs are named '5_left'" in result.stderr
    assert not (tmp_path / "s.csv").exists()


def test_blend_is_for_retina_runs(tmp_path):
    from helpers.data import write_classroom_folder

    source = write_classroom_folder(tmp_path / "c", per_class=(16, 6))
    assert invoke("prepare", "har", source, "--out", tmp_path / "data").exit_code == 0
    settings = [
        "--set",
        "model.units=4",
        "--set",
        "model.layers=1",
        "--set",
        "train.epochs=1",
        "--set",
        "train.batch_size=8",
    ]
    assert invoke("train", tmp_path / "data", "--out", tmp_path / "run", *settings).exit_code == 0
    result = invoke("blend", tmp_path / "run")
    assert result.exit_code == 2 and "har runs have none" in result.stderr
    result = invoke("blend", tmp_path / "run", "--tta", "flips")  # the task's refusal first, not the TTA's
    assert result.exit_code == 2 and "har runs have none" in result.stderr
