"""The bad-input corpus: every mistake is one `error:` line naming the problem, exit 1 (data) or 2
(usage), no traceback, and no output left behind. Plus a fuzz pass of random bytes."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
from helpers.cli import invoke
from helpers.data import kaggle_folder, write_classroom_folder, write_long_csv, write_series_csv, write_uci_folder

TINY_HAR = [
    "--set",
    "model.units=4",
    "--set",
    "model.layers=1",
    "--set",
    "model.conv_layers=0",
    "--set",
    "train.epochs=1",
    "--set",
    "train.batch_size=8",
    "--set",
    "train.min_steps_per_epoch=0",
    "--set",
    "early_stopping.start_from_epoch=0",
]
TINY_CNN = [
    "--set",
    "model.conv_layers=1",
    "--set",
    "model.conv_filters=4",
    "--set",
    "model.dense_units=4",
    "--set",
    "train.epochs=1",
    "--set",
    "train.batch_size=4",
    "--set",
    "early_stopping.patience=0",
]


@pytest.fixture(scope="module")
def shared(activity_run, retina_run):
    """A tiny finished run of each task, with the data it was trained on (conftest's shared runs, copied)."""
    return {
        "root": activity_run["root"],
        "har_source": activity_run["source"],
        "har": activity_run["data"],
        "har_run": activity_run["run"],
        "retina_source": retina_run["source"],
        "retina": retina_run["data"],
        "retina_run": retina_run["run"],
    }


# --- builders: each makes its bad input under `tmp` and returns the command's arguments ----------


def _uci_missing_signal(tmp, shared):
    root = write_uci_folder(tmp / "raw")
    next((root / "train" / "Inertial Signals").glob("body_gyro_y_*")).unlink()
    return ["prepare", "har", root, "--out", tmp / "out"]


def _uci_short_row(tmp, shared):
    root = write_uci_folder(tmp / "raw")
    path = next((root / "train" / "Inertial Signals").glob("total_acc_x_*"))
    lines = path.read_text().splitlines()
    lines[2] = " ".join(lines[2].split()[:-3])
    path.write_text("\n".join(lines) + "\n")
    return ["prepare", "har", root, "--out", tmp / "out"]


def _classroom_with(tmp, change):
    root = write_classroom_folder(tmp / "c")
    path = root / "train" / "a02" / "series_001.csv"
    frame = pd.read_csv(path, index_col=0)
    write_series_csv(path, change(frame.to_numpy()), list(frame.columns))
    return root


def _unequal_series(tmp, shared):
    return ["prepare", "har", _classroom_with(tmp, lambda values: values[:-5]), "--out", tmp / "out"]


def _nan_value(tmp, shared):
    def change(values):
        values[3, 1] = np.nan
        return values

    return ["prepare", "har", _classroom_with(tmp, change), "--out", tmp / "out"]


def _infinite_value(tmp, shared):
    def change(values):
        values[2, 0] = np.inf
        return values

    return ["prepare", "har", _classroom_with(tmp, change), "--out", tmp / "out"]


def _kaggle_with(tmp, rewrite):
    root = kaggle_folder(tmp / "kaggle", patients=3, with_test=False)
    labels = pd.read_csv(root / "trainLabels.csv")
    rewrite(labels).to_csv(root / "trainLabels.csv", index=False)
    return ["prepare", "retina", root, "--out", tmp / "out", "--size", "32", "--workers", "1"]


def _retina_level_out_of_range(tmp, shared):
    return _kaggle_with(tmp, lambda labels: labels.assign(level=labels["level"].where(labels.index != 2, 7)))


def _retina_level_not_integer(tmp, shared):
    return _kaggle_with(
        tmp, lambda labels: labels.assign(level=labels["level"].astype(object).where(labels.index != 1, "2.5"))
    )


def _retina_no_level_column(tmp, shared):
    return _kaggle_with(tmp, lambda labels: labels.rename(columns={"level": "grade"}))


def _retina_duplicate_names(tmp, shared):
    return _kaggle_with(tmp, lambda labels: pd.concat([labels, labels.iloc[[0]]], ignore_index=True))


def _a_file(tmp, name="notes.txt"):
    path = tmp / name
    path.write_text("just some text\n")
    return path


def _out_holds_another_run(tmp, shared):
    other = tmp / "other-run"
    shutil.copytree(shared["har_run"], other)
    return ["train", shared["har"], "--out", other, *TINY_HAR]


def _config_file(tmp, text):
    path = tmp / "mine.yaml"
    path.write_text(text)
    return path


def _corrupt_meta(tmp, shared):
    data = tmp / "data"
    shutil.copytree(shared["har"], data)
    (data / "meta.json").write_text("{ not json")
    return ["train", data, "--out", tmp / "out"]


def _run_with(tmp, shared, task, damage):
    run = tmp / "run"
    shutil.copytree(shared[f"{task}_run"], run)
    damage(run)
    return run


def _corrupt_model(tmp, shared):
    run = _run_with(tmp, shared, "har", lambda run: (run / "model.keras").write_bytes(b"PK\x03\x04 broken"))
    return ["evaluate", run, "--split", "val"]


def _model_of_another_task(tmp, shared):
    run = _run_with(
        tmp, shared, "har", lambda run: shutil.copyfile(shared["retina_run"] / "model.keras", run / "model.keras")
    )
    return ["evaluate", run, "--split", "val"]


def _unknown_class_in_predict(tmp, shared):
    source = tmp / "incoming"
    shutil.copytree(shared["har_source"] / "validation", source)
    shutil.copytree(source / "a01", source / "a09")
    return ["predict", shared["har_run"], source, "--out", tmp / "out.csv"]


def _retina_run_on_signals(tmp, shared):
    return ["predict", shared["retina_run"], shared["har_source"] / "validation", "--out", tmp / "out.csv"]


def _random_bytes_photograph(tmp, shared):
    folder = tmp / "photos"
    folder.mkdir()
    (folder / "1_left.jpeg").write_bytes(np.random.default_rng(0).bytes(3000))
    return ["predict", shared["retina_run"], folder, "--out", tmp / "out.csv"]


# (id, builder, exit code, fragment of the one error line, output path that must not appear)
CASES = [
    # prepare har
    (
        "har-missing-path",
        lambda tmp, s: ["prepare", "har", tmp / "absent", "--out", tmp / "out"],
        1,
        "no such file or folder",
        "out",
    ),
    (
        "har-empty-folder",
        lambda tmp, s: ["prepare", "har", (tmp / "empty").mkdir() or tmp / "empty", "--out", tmp / "out"],
        1,
        "no CSV series found",
        "out",
    ),
    ("har-text-file", lambda tmp, s: ["prepare", "har", _a_file(tmp), "--out", tmp / "out"], 1, "notes.txt", "out"),
    ("har-uci-missing-signal", _uci_missing_signal, 1, "body_gyro_y", "out"),
    ("har-uci-short-row", _uci_short_row, 1, "line 3: 29 values where the other lines have 32", "out"),
    ("har-unequal-series", _unequal_series, 1, "series_001.csv", "out"),
    ("har-nan", _nan_value, 1, "series_001.csv", "out"),
    ("har-infinite", _infinite_value, 1, "series_001.csv", "out"),
    (
        "har-window-too-long",
        lambda tmp, s: ["prepare", "har", write_long_csv(tmp / "l.csv"), "--out", tmp / "out", "--window", "5000"],
        1,
        "shorter than the window",
        "out",
    ),
    (
        "har-bad-fraction",
        lambda tmp, s: ["prepare", "har", s["har_source"], "--out", tmp / "out", "--val-fraction", "-0.1"],
        2,
        "--val-fraction",
        "out",
    ),
    (
        "har-out-is-a-file",
        lambda tmp, s: ["prepare", "har", s["har_source"], "--out", _a_file(tmp, "out")],
        2,
        "out",
        None,
    ),
    # prepare retina
    (
        "retina-missing-path",
        lambda tmp, s: ["prepare", "retina", tmp / "absent", "--out", tmp / "out"],
        1,
        "absent",
        "out",
    ),
    (
        "retina-empty-folder",
        lambda tmp, s: ["prepare", "retina", (tmp / "empty").mkdir() or tmp / "empty", "--out", tmp / "out"],
        1,
        "empty",
        "out",
    ),
    ("retina-no-level", _retina_no_level_column, 1, "level", "out"),
    ("retina-level-7", _retina_level_out_of_range, 1, "row 4: level '7'", "out"),
    ("retina-level-2.5", _retina_level_not_integer, 1, "row 3: level '2.5'", "out"),
    ("retina-duplicate-names", _retina_duplicate_names, 1, "labelled twice", "out"),
    (
        "retina-size-0",
        lambda tmp, s: ["prepare", "retina", s["retina_source"], "--out", tmp / "out", "--size", "0"],
        2,
        "--size",
        "out",
    ),
    # train
    (
        "train-unknown-key",
        lambda tmp, s: ["train", s["har"], "--out", tmp / "out", "--set", "model.colour=red"],
        2,
        "unknown config key 'model.colour'",
        "out",
    ),
    (
        "train-wrong-type",
        lambda tmp, s: ["train", s["har"], "--out", tmp / "out", "--set", "train.epochs=many"],
        2,
        "train.epochs",
        "out",
    ),
    (
        "train-negative-rate",
        lambda tmp, s: ["train", s["har"], "--out", tmp / "out", "--set", "optimizer.learning_rate=-0.1"],
        2,
        "optimizer.learning_rate",
        "out",
    ),
    (
        "train-zero-epochs",
        lambda tmp, s: ["train", s["har"], "--out", tmp / "out", "--set", "train.epochs=0"],
        2,
        "train.epochs",
        "out",
    ),
    (
        "train-not-prepared",
        lambda tmp, s: ["train", s["har_source"], "--out", tmp / "out"],
        1,
        "is not a prepared DATA_DIR",
        "out",
    ),
    ("train-data-is-a-file", lambda tmp, s: ["train", _a_file(tmp), "--out", tmp / "out"], 1, "notes.txt", "out"),
    ("train-corrupt-meta", _corrupt_meta, 1, "meta.json", "out"),
    ("train-out-holds-a-run", _out_holds_another_run, 2, "--force", None),
    (
        "train-config-not-yaml",
        lambda tmp, s: ["train", s["har"], "--out", tmp / "out", "--config", _config_file(tmp, "model: [unclosed")],
        2,
        "not valid YAML",
        "out",
    ),
    (
        "train-config-not-a-mapping",
        lambda tmp, s: ["train", s["har"], "--out", tmp / "out", "--config", _config_file(tmp, "- 1\n- 2\n")],
        2,
        "expected a mapping",
        "out",
    ),
    (
        "train-config-missing",
        lambda tmp, s: ["train", s["har"], "--out", tmp / "out", "--config", tmp / "nothing.yaml"],
        2,
        "does not exist",
        "out",
    ),
    (
        "train-model-for-other-task",
        lambda tmp, s: ["train", s["har"], "--out", tmp / "out", "--config", "retina-cnn"],
        2,
        "does not fit har data",
        "out",
    ),
    ("train-resume-not-a-run", lambda tmp, s: ["train", "--resume", tmp], 1, "is not a dltrain run", None),
    # evaluate
    ("evaluate-not-a-run", lambda tmp, s: ["evaluate", tmp], 1, "is not a dltrain run", None),
    ("evaluate-missing-run", lambda tmp, s: ["evaluate", tmp / "absent"], 1, "no such run folder", None),
    ("evaluate-corrupt-model", _corrupt_model, 1, "cannot be loaded", None),
    ("evaluate-model-of-other-task", _model_of_another_task, 1, "belongs to another run", None),
    (
        "evaluate-bad-split",
        lambda tmp, s: ["evaluate", s["har_run"], "--split", "everything"],
        2,
        "'everything' is not a split",
        None,
    ),
    # predict
    ("predict-unknown-class", _unknown_class_in_predict, 1, "a09", "out.csv"),
    (
        "predict-missing-input",
        lambda tmp, s: ["predict", s["har_run"], tmp / "absent", "--out", tmp / "out.csv"],
        1,
        "absent",
        "out.csv",
    ),
    ("predict-retina-run-on-signals", _retina_run_on_signals, 1, "no images found", "out.csv"),
    ("predict-random-bytes-photograph", _random_bytes_photograph, 1, "1_left.jpeg", "out.csv"),
    ("predict-out-is-a-folder", lambda tmp, s: ["predict", s["har_run"], s["har"], "--out", tmp], 2, "--out", None),
    # compare / sweep
    ("compare-not-a-run", lambda tmp, s: ["compare", tmp], 1, "is not a dltrain run", None),
    (
        "sweep-out-is-a-file",
        lambda tmp, s: ["sweep", s["har"], "--grid", "optimizer.name=adam", "--out", _a_file(tmp, "out")],
        2,
        "is a file",
        None,
    ),
    (
        "sweep-bad-grid",
        lambda tmp, s: ["sweep", s["har"], "--grid", "optimizer.name=adam,lion", "--out", tmp / "out"],
        2,
        "unknown optimizer 'lion'",
        "out",
    ),
]


# --- tampered files, numbers out of range, odd formats (the adversarial pass) --------------------------


def _tampered_meta(change):
    def build(tmp, shared):
        data = tmp / "data"
        shutil.copytree(shared["har"], data)
        meta = json.loads((data / "meta.json").read_text())
        change(meta)
        (data / "meta.json").write_text(json.dumps(meta))
        return ["train", data, "--out", tmp / "out", *TINY_HAR]

    return build


def _labels_out_of_range(tmp, shared):
    data = tmp / "data"
    shutil.copytree(shared["har"], data)
    with np.load(data / "train.npz") as arrays:
        values = dict(arrays)
    values["y"][0] = 99
    np.savez(data / "train.npz", **values)
    return ["train", data, "--out", tmp / "out", *TINY_HAR]


def _tampered_run(change, command, which="har_run"):
    def build(tmp, shared):
        run = tmp / "run"
        shutil.copytree(shared[which], run)
        change(run)
        return [part if part != "RUN" else run for part in command]

    return build


def _set_provenance(key, value):
    def change(run):
        provenance = json.loads((run / "provenance.json").read_text())
        provenance[key] = value
        (run / "provenance.json").write_text(json.dumps(provenance))

    return change


def _interrupted_with(last_keras):
    def change(run):
        _set_provenance("status", "interrupted")(run)
        (run / "last.keras").write_bytes(last_keras(run))

    return change


def _blend_of_version(version: int):
    def change(run):
        blend = {"format_version": version, "coefficients": [1, 0, 0], "intercept": 0.0}
        blend |= {"thresholds": [0.5, 1.5, 2.5, 3.5], "folds": 2, "images": 8, "validation_kappa": {}}
        (run / "blend.json").write_text(json.dumps(blend))

    return change


def _interrupted_with_history(content: bytes):
    def change(run):  # the finished run's last.keras is a real resume state
        _set_provenance("status", "interrupted")(run)
        (run / "history.csv").write_bytes(content)

    return change


def _retina_data_with(change):
    def build(tmp, shared):
        data = tmp / "data"
        shutil.copytree(shared["retina"], data)
        change(data)
        return ["train", data, "--out", tmp / "out", *TINY_CNN]

    return build


def _drop_column(data):
    table = pd.read_csv(data / "train.csv", dtype=str)
    table.drop(columns="level").to_csv(data / "train.csv", index=False)


def _truncate_an_image(data):
    # A training image: found before any epoch is checkpointed (a damaged test image, found while the
    # finished run is scored, leaves a resumable run instead: test_resume covers that).
    image = data / "images" / f"{pd.read_csv(data / 'train.csv', dtype=str)['image'][0]}.jpeg"
    image.write_bytes(image.read_bytes()[:200])


def _latin1_labels(tmp, shared):
    root = kaggle_folder(tmp / "kaggle", patients=3, with_test=False)
    (root / "trainLabels.csv").write_bytes("image,level\n1_left,0\n1_right,1\nr\xe9tine,0\n".encode("latin-1"))
    return ["prepare", "retina", root, "--out", tmp / "out", "--size", "32", "--workers", "1"]


def _latin1_activity_labels(tmp, shared):
    root = write_uci_folder(tmp / "raw")
    (root / "activity_labels.txt").write_bytes("1 MARCHE\n2 S\xc9ANCE\n".encode("latin-1"))
    return ["prepare", "har", root, "--out", tmp / "out"]


def _ts_pair(tmp, shared):
    lines = ["@problemName X", "@dimensions 2", "@classLabel true a b", "@data"]
    train = [*lines, *[f"{i},{i + 1},{i}:{i},{i},{i}:{'a' if i % 2 else 'b'}" for i in range(8)]]
    test = [*lines, *[f"{i},{i + 1},{i}:{i},{i},{i}:{i},{i},{i}:{'a' if i % 2 else 'b'}" for i in range(4)]]
    (tmp / "X_TRAIN.ts").write_text("\n".join(train) + "\n")
    (tmp / "X_TEST.ts").write_text("\n".join(test).replace("@dimensions 2", "@dimensions 3") + "\n")
    return ["prepare", "har", tmp / "X_TRAIN.ts", "--out", tmp / "out"]


def _long_csv_with(change, *options):
    def build(tmp, shared):
        path = write_long_csv(tmp / "long.csv")
        frame = pd.read_csv(path)
        change(frame).to_csv(path, index=False)
        return ["prepare", "har", path, "--out", tmp / "out", *options]

    return build


def _all_photographs_unreadable(tmp, shared):
    root = kaggle_folder(tmp / "kaggle", patients=3, with_test=False)
    for image in (root / "train").iterdir():
        image.write_bytes(b"not a photograph")
    return ["prepare", "retina", root, "--out", tmp / "out", "--size", "32", "--workers", "1"]


def _float_subjects(frame):
    return frame.assign(user=frame["user"] + 0.5)


HAR_RUN = ["evaluate", "RUN", "--split", "val"]
MORE_CASES = [
    ("meta-missing-classes", _tampered_meta(lambda meta: meta.pop("classes")), 1, "classes"),
    ("meta-window-not-a-number", _tampered_meta(lambda meta: meta.update(window="long")), 1, "window"),
    ("meta-shape-disagrees", _tampered_meta(lambda meta: meta.update(window=8, input_shape=[8, 3])), 1, "x has shape"),
    ("meta-other-format-version", _tampered_meta(lambda meta: meta.update(format_version=7)), 1, "format version 7"),
    ("npz-labels-out-of-range", _labels_out_of_range, 1, "labels must lie in"),
    ("provenance-thresholds-text", _tampered_run(_set_provenance("thresholds", ["a", "b"]), HAR_RUN), 1, "thresholds"),
    (
        "provenance-not-json",
        _tampered_run(lambda run: (run / "provenance.json").write_text("{"), HAR_RUN),
        1,
        "provenance.json",
    ),
    (
        "history-with-text",
        _tampered_run(lambda run: (run / "history.csv").write_text("epoch,loss\n0,many\n"), ["compare", "RUN"]),
        1,
        "holds text",
    ),
    (
        "metrics-test-damaged",
        _tampered_run(
            lambda run: (run / "metrics-test.json").write_text('{"split": "test", "accuracy": "high"}'),
            ["compare", "RUN"],
        ),
        1,
        "metrics-test.json",
    ),
    (
        "blend-other-format-version",
        _tampered_run(_blend_of_version(7), ["evaluate", "RUN", "--split", "val"], "retina_run"),
        1,
        "format_version",
    ),
    (
        "history-with-text-evaluate",
        _tampered_run(lambda run: (run / "history.csv").write_text("epoch,loss\n0,many\n"), HAR_RUN),
        1,
        "holds text",
    ),
    (
        "history-garbage-bytes-resume",
        _tampered_run(_interrupted_with_history(b"\xff\xfe\x00garbage\x81"), ["train", "--resume", "RUN"]),
        1,
        "history.csv",
    ),
    (
        "resume-garbage-last",
        _tampered_run(_interrupted_with(lambda run: b"garbage"), ["train", "--resume", "RUN"]),
        1,
        "holds no resume state",
    ),
    (
        "resume-foreign-last",
        _tampered_run(_interrupted_with(lambda run: (run / "model.keras").read_bytes()), ["train", "--resume", "RUN"]),
        1,
        "holds no resume state",
    ),
    ("retina-split-without-level", _retina_data_with(_drop_column), 1, "no level column"),
    ("retina-corrupt-prepared-image", _retina_data_with(_truncate_an_image), 1, "cannot be decoded"),
    (
        "seed-beyond-32-bits",
        lambda tmp, s: ["train", s["har"], "--out", tmp / "out", "--set", "train.seed=4294967296"],
        2,
        "train.seed",
    ),
    (
        "epochs-beyond-int64",
        lambda tmp, s: ["train", s["har"], "--out", tmp / "out", "--set", f"train.epochs={10**30}"],
        2,
        "train.epochs",
    ),
    (
        "rate-infinite",
        lambda tmp, s: ["train", s["har"], "--out", tmp / "out", "--set", "optimizer.learning_rate=.inf"],
        2,
        "optimizer.learning_rate",
    ),
    (
        "l2-overflowing",
        lambda tmp, s: ["train", s["har"], "--out", tmp / "out", *TINY_HAR, "--set", "regularization.l2=1e308"],
        2,
        "regularization.l2",
    ),
    (
        "prepare-negative-seed",
        lambda tmp, s: ["prepare", "har", s["har_source"], "--out", tmp / "out", "--seed", "-1"],
        2,
        "--seed",
    ),
    (
        "prepare-window-beyond-int64",
        lambda tmp, s: ["prepare", "har", s["har_source"], "--out", tmp / "out", "--window", str(10**30)],
        2,
        "--window",
    ),
    (
        "retina-size-unbounded",
        lambda tmp, s: [
            "prepare",
            "retina",
            "demo",
            "--out",
            tmp / "out",
            "--size",
            "100000",
            "--demo-dir",
            tmp / "raw",
        ],
        2,
        "--size",
    ),
    (
        "fraction-nan",
        lambda tmp, s: ["prepare", "har", s["har_source"], "--out", tmp / "out", "--val-fraction", "nan"],
        2,
        "--val-fraction",
    ),
    (
        "export-tolerance-nan",
        lambda tmp, s: ["export", s["har_run"], "--format", "litert", "--out", tmp / "m.tflite", "--tolerance", "nan"],
        2,
        "--tolerance",
    ),
    ("labels-not-utf8", _latin1_labels, 1, "trainLabels.csv"),
    ("activity-labels-not-utf8", _latin1_activity_labels, 1, "activity_labels.txt"),
    ("ts-test-other-dimensions", _ts_pair, 1, "X_TEST.ts"),
    (
        "channels-empty",
        lambda tmp, s: ["prepare", "har", s["har_source"], "--out", tmp / "out", "--channels", ""],
        2,
        "--channels",
    ),
    ("subjects-not-integers", _long_csv_with(_float_subjects, "--window", "32"), 1, "user"),
    (
        "sample-rate-negative",
        lambda tmp, s: ["prepare", "har", s["har_source"], "--out", tmp / "out", "--sample-rate", "-5"],
        2,
        "--sample-rate",
    ),
    (
        "label-column-is-time-column",
        _long_csv_with(lambda frame: frame, "--label-column", "timestamp", "--window", "32"),
        2,
        "--label-column",
    ),
    ("every-photograph-rejected", _all_photographs_unreadable, 1, "could be prepared"),
]
CASES += [(name, builder, exit_code, fragment, "out") for name, builder, exit_code, fragment in MORE_CASES]


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 70
    assert {case[2] for case in CASES} == {1, 2}


@pytest.mark.parametrize(
    ("builder", "exit_code", "fragment", "output"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_bad_input_is_one_clear_line(shared, tmp_path, builder, exit_code, fragment, output):
    arguments = builder(tmp_path, shared)
    before = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*"))
    result = invoke(*arguments)
    assert result.exit_code == exit_code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert fragment in errors[0], errors[0]
    assert "Traceback" not in result.output
    if output is not None:
        assert not (tmp_path / output).exists()
    after = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*"))
    assert after == before, "the command left files behind"


def test_verbose_shows_the_traceback(shared, tmp_path):
    result = invoke("--verbose", "evaluate", str(tmp_path / "absent"))
    assert result.exit_code != 0 and isinstance(result.exception, Exception)
    assert "no such run folder" in str(result.exception)


# --- fuzz: random bytes where images, CSV series and configs are expected ---------------------


@pytest.mark.parametrize("seed", range(4))
def test_random_bytes_never_escape_as_a_traceback(shared, tmp_path, seed):
    rng = np.random.default_rng(seed)
    noise = lambda: rng.bytes(int(rng.integers(1, 4000)))  # noqa: E731
    # CSV series
    classroom = write_classroom_folder(tmp_path / "c")
    (classroom / "train" / "a01" / "series_000.csv").write_bytes(noise())
    # photographs
    kaggle = kaggle_folder(tmp_path / "kaggle", patients=3, with_test=False)
    (kaggle / "train" / "1_left.jpeg").write_bytes(noise())
    labels_csv = tmp_path / "labels-kaggle"
    shutil.copytree(kaggle, labels_csv)
    (labels_csv / "trainLabels.csv").write_bytes(noise())
    # configs
    config = tmp_path / "fuzz.yaml"
    config.write_bytes(noise())
    commands = [
        ["prepare", "har", classroom, "--out", tmp_path / "o1"],
        ["prepare", "retina", kaggle, "--out", tmp_path / "o2", "--size", "32", "--workers", "1"],
        ["prepare", "retina", labels_csv, "--out", tmp_path / "o3", "--size", "32", "--workers", "1"],
        ["train", shared["har"], "--out", tmp_path / "o4", "--config", config, *TINY_HAR],
        ["prepare", "har", config, "--out", tmp_path / "o5"],
    ]
    for command in commands:
        result = invoke(*command)
        # A random photograph is a rejected image (prepare goes on); anything else is one error line.
        assert result.exit_code in (0, 1, 2), (command, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (command, repr(result.exception))
        assert "Traceback" not in result.output
        if result.exit_code:
            assert result.stderr.strip().splitlines()[-1].startswith("error:"), (command, result.stderr)


def test_the_hapt_reader_refuses_a_pickle_that_names_os_system(tmp_path):
    from dltrain.core.errors import DataError
    from dltrain.tasks.har.readers.hapt import _SafeUnpickler

    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    payload = pickle.dumps(Exploit())
    import io

    with pytest.raises((DataError, pickle.UnpicklingError), match="system"):
        _SafeUnpickler(io.BytesIO(payload)).load()
    assert not (tmp_path / "pwned").exists()
