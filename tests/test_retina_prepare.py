"""`prepare retina`: layouts, fundus crop, patient-wise splits, rejects, resume; tiny JPEGs in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.cli import invoke
from helpers.data import fundus_jpeg, kaggle_folder
from PIL import Image

from dltrain.core.errors import DataError
from dltrain.tasks.retina.images import RejectedImage, decode, fundus_box, prepare_image
from dltrain.tasks.retina.meta import ImageOptions
from dltrain.tasks.retina.prepare import split_by_patient
from dltrain.tasks.retina.sources import RetinaItem, list_retina_source


def test_fundus_box_finds_the_disc_not_the_frame():
    array = np.asarray(Image.open(fundus_jpeg(Path("/tmp") / "dltrain-test-box.jpeg")))
    top, bottom, left, right = fundus_box(array)
    assert abs((bottom - top) - 216) <= 6 and abs((right - left) - 216) <= 6  # the disc, 0.9 x 240 across
    assert abs((left + right) / 2 - 180) <= 4


def test_prepare_image_is_square_and_of_the_requested_size(tmp_path):
    image = prepare_image(fundus_jpeg(tmp_path / "a.jpeg", width=2400, height=1600), ImageOptions(size=64))
    assert image.size == (64, 64)
    corners = np.asarray(image)[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert corners.max() < 40  # black outside the disc
    graham = np.asarray(prepare_image(tmp_path / "a.jpeg", ImageOptions(size=64, graham=True)))
    assert (graham[0, 0] == 128).all()  # Graham's mask: grey outside 0.9 of the radius


def test_decode_uses_draft_scaling_for_large_jpegs(tmp_path):
    path = fundus_jpeg(tmp_path / "big.jpeg", width=3200, height=2400)
    assert decode(path, 256).shape[:2] == (300, 400)  # 1/8 scale still covers 256


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda path: path.write_bytes(b""), "empty file"),
        (lambda path: path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3]), "truncated"),
        (lambda path: path.write_bytes(b"this is not a jpeg"), "not an image"),
        (lambda path: Image.new("RGB", (300, 200)).save(path, format="JPEG"), "blank"),
    ],
)
def test_bad_images_are_rejected_with_a_reason(tmp_path, damage, reason):
    path = fundus_jpeg(tmp_path / "x.jpeg")
    damage(path)
    with pytest.raises(RejectedImage, match=reason):
        prepare_image(path, ImageOptions(size=32))


def test_kaggle_listing_rejects_missing_files_and_unlabelled_images(tmp_path):
    root = kaggle_folder(tmp_path / "kaggle", patients=4, with_test=False)
    labels = pd.read_csv(root / "trainLabels.csv")
    pd.concat([labels, pd.DataFrame([{"image": "77_left", "level": 1}])]).to_csv(root / "trainLabels.csv", index=False)
    fundus_jpeg(root / "train" / "55_right.jpeg")
    items, rejects, layout = list_retina_source(root)
    reasons = {reject.image: reject.reason for reject in rejects}
    assert layout == "kaggle"
    assert reasons == {"77_left": "label without an image file", "55_right": "image file without a label"}
    assert len(items) == 8


@pytest.mark.parametrize(
    ("rewrite", "message"),
    [
        (lambda labels: pd.concat([labels, labels.iloc[[0]]]), r"'1_left' is labelled twice \(rows 2 and 10\)"),
        (
            lambda labels: labels.assign(level=labels["level"].astype(object).where(labels.index != 2, "7")),
            r"row 4: level '7' of '2_left' is not an integer 0-4",
        ),
        (
            lambda labels: labels.assign(level=labels["level"].astype(object).where(labels.index != 3, "x")),
            r"row 5: level 'x'",
        ),
    ],
)
def test_kaggle_label_table_mistakes_are_errors(tmp_path, rewrite, message):
    root = kaggle_folder(tmp_path / "kaggle", patients=4, with_test=False)
    rewrite(pd.read_csv(root / "trainLabels.csv")).to_csv(root / "trainLabels.csv", index=False)
    with pytest.raises(DataError, match=message):
        list_retina_source(root)


def test_kaggle_csv_without_level_is_a_layout_error(tmp_path):
    root = kaggle_folder(tmp_path / "kaggle", patients=2, with_test=False)
    pd.read_csv(root / "trainLabels.csv").drop(columns="level").to_csv(root / "trainLabels.csv", index=False)
    with pytest.raises(DataError, match="no level column"):
        list_retina_source(root)


def test_course_layout(tmp_path):
    root = tmp_path / "course"
    for split in ("train", "validation"):
        for level in range(5):
            fundus_jpeg(root / split / str(level) / f"{split}{level}_left.jpeg", level=level)
    items, rejects, layout = list_retina_source(root)
    assert layout == "course" and len(items) == 10 and not rejects
    assert {item.split for item in items if item.name.startswith("validation")} == {"val"}
    fundus_jpeg(root / "train" / "7" / "odd_left.jpeg")
    with pytest.raises(DataError, match="a level folder must be named 0-4"):
        list_retina_source(root)
    (root / "train" / "7" / "odd_left.jpeg").rename(root / "train" / "3" / "validation0_left.jpeg")
    (root / "train" / "7").rmdir()
    with pytest.raises(DataError, match="'validation0_left'"):
        list_retina_source(root)


def test_a_patient_with_eyes_in_train_and_validation_is_warned_of(tmp_path):
    root = tmp_path / "course"
    for patient in range(10):
        for eye in ("left", "right"):
            split = "validation" if patient == 0 and eye == "right" or patient >= 8 else "train"
            fundus_jpeg(
                root / split / str(patient % 5) / f"{patient}_{eye}.jpeg", width=120, height=80, level=patient % 5
            )
    result = invoke("prepare", "retina", root, "--out", tmp_path / "data", "--size", "32", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "WARNING 1 patient(s) have eyes in more than one split (e.g. 0," in result.output


def test_patient_split_keeps_both_eyes_together():
    items = [
        RetinaItem(f"{patient}_{eye}", Path("x"), (patient + (eye == "left")) % 5)
        for patient in range(60)
        for eye in ("left", "right")
    ]
    splits = split_by_patient(items, 0.2, 0.2, seed=3)
    for patient in range(60):
        assert splits[f"{patient}_left"] == splits[f"{patient}_right"]
    patients = {
        split: {name.split("_")[0] for name, value in splits.items() if value == split}
        for split in ("train", "val", "test")
    }
    assert (len(patients["train"]), len(patients["val"]), len(patients["test"])) == (36, 12, 12)


def test_prepare_cli_end_to_end_with_rejects_and_resume(tmp_path):
    root = kaggle_folder(tmp_path / "kaggle", patients=10)
    (root / "train" / "3_left.jpeg").write_bytes(b"")
    out = tmp_path / "data"
    arguments = [
        "prepare",
        "retina",
        str(root),
        "--out",
        str(out),
        "--size",
        "48",
        "--workers",
        "2",
        "--val-fraction",
        "0.2",
        "--test-fraction",
        "0.2",
    ]
    result = invoke(*arguments)
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["task"] == "retina" and meta["input_shape"] == [48, 48, 3]
    assert meta["rejects"] == 1 and pd.read_csv(out / "rejects.csv", keep_default_na=False).to_dict("records") == [
        {"image": "3_left", "reason": "empty file", "split": ""}
    ]
    assert sum(meta["splits"][split] for split in ("train", "val", "test")) == 19
    assert meta["splits"]["unlabelled"] == 2
    tables = {split: pd.read_csv(out / f"{split}.csv") for split in ("train", "val", "test")}
    assert tables["train"]["level"].dtype.kind == "i"
    patient_sets = [set(table["patient"]) for table in tables.values()]
    assert (
        not (patient_sets[0] & patient_sets[1])
        and not (patient_sets[0] & patient_sets[2])
        and not (patient_sets[1] & patient_sets[2])
    )
    assert all(Image.open(out / "images" / f"{name}.jpeg").size == (48, 48) for name in tables["train"]["image"])

    # A re-run with the same options resumes: prepared images are kept, not rewritten.
    kept = out / "images" / "1_left.jpeg"
    stamp = kept.stat().st_mtime_ns
    assert invoke(*arguments).exit_code == 0
    assert kept.stat().st_mtime_ns == stamp
    # Other options on the same folder are refused without --force.
    other = invoke(*arguments[:5], "--size", "64")
    assert other.exit_code == 2 and "--force" in other.stderr


def test_prepare_missing_source(tmp_path):
    result = invoke("prepare", "retina", str(tmp_path / "absent"), "--out", str(tmp_path / "data"))
    assert result.exit_code == 1 and "no such folder" in result.stderr
    assert not (tmp_path / "data").exists()


def test_interrupted_prepare_resumes_to_the_same_result(tmp_path):
    root = kaggle_folder(tmp_path / "kaggle", patients=8)
    out = tmp_path / "data"
    arguments = ["prepare", "retina", str(root), "--out", str(out), "--size", "40", "--workers", "1"]
    assert invoke(*arguments).exit_code == 0
    complete = {path.name: path.read_bytes() for path in sorted((out / "images").iterdir())}
    tables = {name: (out / name).read_text() for name in ("train.csv", "val.csv", "test.csv", "rejects.csv")}
    # What a kill half-way leaves: no meta.json, some images missing, a stray partial file.
    (out / "meta.json").unlink()
    for path in sorted((out / "images").iterdir())[::2]:
        path.unlink()
    (out / "images" / ".1_left.jpeg.partial").write_bytes(b"half")
    assert invoke(*arguments).exit_code == 0
    assert {
        path.name: path.read_bytes() for path in sorted((out / "images").iterdir())
    } == complete  # the partial is gone
    assert {name: (out / name).read_text() for name in tables} == tables
    assert json.loads((out / "meta.json").read_text())["task"] == "retina"


def test_demo_set_is_deterministic_and_in_the_kaggle_layout(tmp_path):
    from dltrain.tasks.retina.simulate import write_demo_set

    first = write_demo_set(tmp_path / "one", patients=3, test_patients=1, seed=5, mix="balanced")
    second = write_demo_set(tmp_path / "two", patients=3, test_patients=1, seed=5, mix="balanced")
    labels = pd.read_csv(first / "trainLabels.csv")
    assert list(labels.columns) == ["image", "level"] and len(labels) == 6
    assert sorted(path.name for path in (first / "train").iterdir()) == sorted(
        f"{name}.jpeg" for name in labels["image"]
    )
    assert sorted(path.name for path in (first / "test").iterdir()) == ["4_left.jpeg", "4_right.jpeg"]
    for name in labels["image"]:
        assert (first / "train" / f"{name}.jpeg").read_bytes() == (second / "train" / f"{name}.jpeg").read_bytes()
    width, height = Image.open(first / "train" / "1_left.jpeg").size
    assert 1_000_000 <= width * height <= 5_100_000  # Kaggle-like frames, 1-5 megapixels
    items, rejects, layout = list_retina_source(first)
    assert layout == "kaggle" and not rejects and len(items) == 8


def test_both_eyes_get_correlated_grades():
    from dltrain.tasks.retina.simulate import GRADE_MIXES, patient_grades

    grades = patient_grades(2000, GRADE_MIXES["kaggle"], np.random.default_rng(0))
    differences = np.array([abs(left - right) for left, right in grades])
    assert differences.max() <= 1 and (differences == 0).mean() > 0.5
    shares = np.bincount([left for left, _ in grades], minlength=5) / 2000
    assert 0.6 < shares[0] < 0.8  # Kaggle's skew: most eyes have no retinopathy


def test_demo_set_with_other_parameters_is_regenerated_not_mixed(tmp_path):
    from dltrain.tasks.retina.simulate import write_demo_set

    root = write_demo_set(tmp_path / "demo", patients=2, test_patients=0, seed=1, mix="balanced")
    before = (root / "train" / "1_left.jpeg").read_bytes()
    write_demo_set(root, patients=2, test_patients=0, seed=2, mix="balanced")
    assert (root / "train" / "1_left.jpeg").read_bytes() != before  # seed 2 drew another photograph
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(Exception, match="not a dltrain demo set"):
        write_demo_set(tmp_path / "mine", patients=1, test_patients=0)


def test_prepare_from_another_source_into_the_same_folder_needs_force(tmp_path):
    first = kaggle_folder(tmp_path / "one", patients=3, with_test=False)
    second = kaggle_folder(tmp_path / "two", patients=3, with_test=False)
    out = tmp_path / "data"
    options = ["--out", str(out), "--size", "32", "--workers", "1", "--val-fraction", "0.34", "--test-fraction", "0"]
    assert invoke("prepare", "retina", str(first), *options).exit_code == 0
    refused = invoke("prepare", "retina", str(second), *options)
    assert refused.exit_code == 2 and "another source" in refused.stderr
    assert invoke("prepare", "retina", str(second), *options, "--force").exit_code == 0


def test_kaggle_layout_with_images_beside_the_csv(tmp_path):
    root = tmp_path / "flat"
    for name, level in (("1_left", 0), ("1_right", 2)):
        fundus_jpeg(root / f"{name}.jpg", level=level)
    pd.DataFrame({"image": ["1_left", "1_right"], "level": [0, 2]}).to_csv(root / "labels.csv", index=False)
    items, rejects, layout = list_retina_source(root)
    assert layout == "kaggle" and not rejects
    assert {(item.name, item.level) for item in items} == {("1_left", 0), ("1_right", 2)}
