"""Each activity SOURCE layout, read into windows; windowing and gravity separation."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from helpers.data import ACTIVITIES, UCI_SIGNALS, class_signal, write_classroom_folder, write_long_csv, write_series_csv

from dltrain.core.errors import DataError, UsageError
from dltrain.tasks.har.meta import HarMeta, Normalization
from dltrain.tasks.har.prepare import prepare_har
from dltrain.tasks.har.readers import READERS, classroom, read_har_source, uci, uea
from dltrain.tasks.har.readers import long_csv as long_csv_reader
from dltrain.tasks.har.splits import last_share_per_class, split_by_subject, time_block_splits, time_blocks
from dltrain.tasks.har.task import windows_from_source
from dltrain.tasks.har.types import EXCLUDED, SPLIT_BY_SUBJECT, UNKNOWN_SUBJECT, UNLABELLED, HarOptions, WindowSet
from dltrain.tasks.har.windows import cut_windows, majority_labels, runs, split_gravity, windows_within_runs


def test_cut_windows_uses_step_and_keeps_channel_order():
    signals = np.arange(20, dtype=np.float32).reshape(10, 2)  # readings 0..9, channel b = a + 1
    windows, starts = cut_windows(signals, window=4, step=2)
    assert starts.tolist() == [0, 2, 4, 6]
    assert windows.shape == (4, 4, 2)
    np.testing.assert_array_equal(windows[1, :, 0], [4, 6, 8, 10])
    np.testing.assert_array_equal(windows[1, :, 1], [5, 7, 9, 11])


def test_windows_stay_inside_one_activity():
    labels = np.array([1] * 10 + [-1] * 3 + [2] * 6 + [7] * 8)
    signals = np.arange(len(labels), dtype=np.float32)[:, None]
    windows, window_labels, starts = windows_within_runs(signals, labels, window=4, step=2, keep={1, 2})
    assert runs(labels)[1] == (10, 13, -1)
    assert window_labels.tolist() == [1, 1, 1, 1, 2, 2]
    assert starts.tolist() == [0, 2, 4, 6, 13, 15]
    for window, start in zip(windows, starts):
        assert (labels[int(window[0, 0]) : int(window[-1, 0]) + 1] == labels[start]).all()


def test_majority_label_of_each_window():
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 2])
    assert majority_labels(labels, window=4, step=2, num_classes=3).tolist() == [0, 1, 1]


def test_split_gravity_recovers_a_constant_gravity():
    rng = np.random.default_rng(0)
    time = np.arange(1000) / 50.0
    body = 0.3 * np.sin(2 * np.pi * 2.0 * time)[:, None] * np.ones((1, 3))
    total = (body + np.array([0.0, 0.0, 1.0]) + 0.001 * rng.standard_normal((1000, 3))).astype(np.float32)
    estimated_body, gravity = split_gravity(total, 50.0)
    np.testing.assert_allclose(gravity[100:-100].mean(axis=0), [0, 0, 1], atol=0.01)
    assert np.abs(estimated_body[100:-100] - body[100:-100]).max() < 0.05


def test_uci_folder_reads_all_nine_signals_with_subjects(uci_folder):
    source = read_har_source(str(uci_folder.parent), HarOptions())  # the parent of 'UCI HAR Dataset' works too
    assert source.kind == "uci-har"
    assert source.channels == UCI_SIGNALS
    assert source.classes == ACTIVITIES
    assert source.windows.x.shape == (42, 32, 9)
    test = source.windows.splits == "test"
    assert set(source.windows.subjects[test]) == {2, 4}
    assert set(source.windows.subjects[~test]) == {1, 3, 5, 6, 7}
    assert source.windows.y.min() == 0 and source.windows.y.max() == 5


def test_uci_folder_raw_channels(uci_folder):
    source = read_har_source(str(uci_folder), HarOptions(channels="raw"))
    assert source.channels == ["total_acc_x", "total_acc_y", "total_acc_z", "body_gyro_x", "body_gyro_y", "body_gyro_z"]
    assert source.windows.x.shape[2] == 6


def test_uci_folder_missing_signal_file_is_a_data_error(uci_folder):
    (uci_folder / "train" / "Inertial Signals" / "body_gyro_y_train.txt").unlink()
    with pytest.raises(DataError, match="body_gyro_y_train.txt"):
        read_har_source(str(uci_folder), HarOptions())


def test_uci_folder_rows_of_wrong_length(uci_folder):
    path = uci_folder / "train" / "Inertial Signals" / "total_acc_z_train.txt"
    rows = path.read_text().splitlines()
    rows[0] = " ".join(rows[0].split()[:-1])  # one reading short
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match="total_acc_z_train.txt"):
        read_har_source(str(uci_folder), HarOptions())


def test_classroom_layout_with_train_validation_and_unlabelled_test(classroom_folder):
    source = read_har_source(str(classroom_folder), HarOptions())
    windows = source.windows
    assert source.kind == "classroom"
    assert source.classes == ["a01", "a02", "a03"]
    assert source.channels == ["feature_0", "feature_1", "feature_2"]
    assert source.window == 16  # whole series, their common length
    assert {split: int((windows.splits == split).sum()) for split in ("train", "val", "unlabelled")} == {
        "train": 36,
        "val": 12,
        "unlabelled": 5,
    }
    assert (windows.y[windows.splits == "unlabelled"] == -1).all()
    assert "train/a02/series_003.csv" in set(windows.ids)


def test_classroom_single_folder_splits_by_contiguous_files(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a01", "a02"):
        for index in range(10):
            write_series_csv(tmp_path / "flat" / name / f"{index:02d}.csv", rng.standard_normal((8, 2)), ["u", "v"])
    source = read_har_source(str(tmp_path / "flat"), HarOptions(val_fraction=0.2, test_fraction=0.2))
    by_split = {split: sorted(source.windows.ids[source.windows.splits == split]) for split in ("train", "val", "test")}
    assert by_split["test"] == ["a01/08.csv", "a01/09.csv", "a02/08.csv", "a02/09.csv"]
    assert by_split["val"] == ["a01/06.csv", "a01/07.csv", "a02/06.csv", "a02/07.csv"]


def test_classroom_series_of_unequal_length_need_a_window(tmp_path):
    root = write_classroom_folder(tmp_path / "c", with_test=False)
    write_series_csv(
        root / "train" / "a01" / "series_999.csv", np.zeros((20, 3)), ["feature_0", "feature_1", "feature_2"]
    )
    with pytest.raises(DataError, match="unequal length.*--window"):
        read_har_source(str(root), HarOptions())
    cut = read_har_source(str(root), HarOptions(window=8, step=4))
    assert cut.window == 8 and cut.windows.x.shape[1] == 8
    assert "train/a01/series_999.csv#12" in set(cut.windows.ids)


def test_classroom_non_numeric_cell_names_file_row_and_column(classroom_folder):
    path = classroom_folder / "train" / "a01" / "series_002.csv"
    frame = pd.read_csv(path, index_col=0)
    frame = frame.astype(object)
    frame.iloc[4, 1] = "oops"
    frame.to_csv(path)
    with pytest.raises(DataError, match=r"series_002.csv: column 'feature_1' row 5: 'oops' is not a number"):
        read_har_source(str(classroom_folder), HarOptions())


def test_classroom_nan_values_are_refused(classroom_folder):
    path = classroom_folder / "validation" / "a03" / "series_000.csv"
    frame = pd.read_csv(path, index_col=0)
    frame.iloc[2, 0] = np.nan
    frame.to_csv(path)
    with pytest.raises(DataError, match="NaN or infinite"):
        read_har_source(str(classroom_folder), HarOptions())


def test_long_csv_with_subjects_windows_per_user(long_csv):
    source = read_har_source(str(long_csv), HarOptions(window=32, step=16))
    assert source.kind == "long-csv"
    assert source.classes == ["Jogging", "Sitting", "Walking"]
    assert source.channels == ["x", "y", "z"]
    assert set(source.windows.subjects) == {1, 2, 3, 4, 5}
    assert (source.windows.splits == "").all()  # decided by subject when preparing
    # 288 readings per user -> 17 windows of 32 with step 16
    assert len(source.windows.x) == 5 * 17


def test_long_csv_without_subject_splits_by_blocks_of_time(tmp_path):
    path = write_long_csv(tmp_path / "one.csv", subjects=(1,), samples_per_activity=200, with_subject=False)
    source = read_har_source(str(path), HarOptions(window=20, step=10, val_fraction=0.2, test_fraction=0.2))
    windows = source.windows
    starts = {split: windows.ids[windows.splits == split].astype(float) for split in ("train", "val", "test")}
    assert starts["train"].max() < starts["val"].min() <= starts["val"].max() < starts["test"].min()


def test_long_csv_missing_label_column(tmp_path):
    path = tmp_path / "nolabel.csv"
    pd.DataFrame({"time": range(10), "x": range(10)}).to_csv(path, index=False)
    # Prediction reads it, every window unlabelled; prepare refuses it.
    source = read_har_source(str(path), HarOptions(window=4))
    assert len(source.windows.x) == 4 and (source.windows.y == UNLABELLED).all()
    with pytest.raises(DataError, match="no label/activity column; name it with --label-column"):
        prepare_har(str(path), tmp_path / "data", HarOptions(window=4))


def test_long_csv_named_column_that_does_not_exist(long_csv):
    with pytest.raises(DataError, match="no column 'act'"):
        read_har_source(str(long_csv), HarOptions(label_column="act"))


def test_long_csv_window_longer_than_a_recording(long_csv):
    with pytest.raises(DataError, match="shorter than the window of 1000"):
        read_har_source(str(long_csv), HarOptions(window=1000))


def test_unknown_channel_lists_the_available_ones(long_csv):
    with pytest.raises(UsageError, match="no channel.*available: x, y, z"):
        read_har_source(str(long_csv), HarOptions(channels="x,w"))


def test_missing_source(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        read_har_source(str(tmp_path / "absent"), HarOptions())


def test_empty_folder_is_a_wrong_layout(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no CSV series found"):
        read_har_source(str(tmp_path / "empty"), HarOptions())


def test_long_csv_with_wisdm_trailing_semicolons(tmp_path):
    path = write_long_csv(tmp_path / "wisdm.csv", subjects=(1, 2), samples_per_activity=40)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0]] + [line + ";" for line in lines[1:]]) + "\n")
    source = read_har_source(str(path), HarOptions(window=20, step=10))
    assert source.channels == ["x", "y", "z"]
    assert source.windows.x.dtype == np.float32 and np.isfinite(source.windows.x).all()


def test_long_csv_with_date_time_stamps_like_daphnet(tmp_path):
    # The layout of aeon's Daphnet_S06R02E0.csv: date-time stamps, 9 channels, a 0/1 label, no subject.
    rng = np.random.default_rng(3)
    count = 640
    stamps = (
        pd.date_range("1970-01-01 00:04:40", periods=count, freq="15625us").strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3]
    )
    frame = pd.DataFrame(rng.integers(-200, 1000, size=(count, 9)), columns=[f"channel_{index}" for index in range(9)])
    frame.insert(0, "timestamp", stamps)
    frame["is_anomaly"] = (np.arange(count) // 80) % 2
    path = tmp_path / "S06R02E0.csv"
    frame.to_csv(path, index=False)
    source = read_har_source(str(path), HarOptions(window=64, step=32, label_column="is_anomaly"))
    assert source.classes == ["0", "1"]
    assert source.windows.x.shape[1:] == (64, 9)
    assert source.windows.ids[0] == "1970-01-01 00:04:40.000"
    # Windows straddling two blocks of time belong to no split.
    assert {"train", "val", "test", EXCLUDED} == set(source.windows.splits)


def test_long_csv_repeated_time_stamps_get_unique_ids(tmp_path):
    path = write_long_csv(tmp_path / "w.csv", subjects=(1,), samples_per_activity=64)
    frame = pd.read_csv(path)
    frame["timestamp"] = 0  # WISDM has runs of zero time stamps
    frame.to_csv(path, index=False)
    source = read_har_source(str(path), HarOptions(window=16, step=16))
    assert len(set(source.windows.ids)) == len(source.windows.ids)
    assert source.windows.ids[1] == "1/0#2"


def test_classroom_csv_without_header_row(tmp_path):
    rng = np.random.default_rng(4)
    for name in ("a01", "a02"):
        for index in range(5):
            path = tmp_path / "c" / name / f"{index}.CSV"
            path.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rng.standard_normal((5, 9))).to_csv(path, header=False)
    source = read_har_source(str(tmp_path / "c"), HarOptions())
    assert source.windows.x.shape == (10, 5, 9)  # no row lost to a header that is not there
    assert source.channels[0] == "feature_0"


def test_uci_files_with_leading_spaces_as_distributed(uci_folder):
    signals = uci_folder / "train" / "Inertial Signals"
    for path in signals.iterdir():
        rows = path.read_text().splitlines()
        path.write_text("".join("  " + "  ".join(row.split()) + "\n" for row in rows))
    source = read_har_source(str(uci_folder), HarOptions())
    assert source.windows.x.shape[1:] == (32, 9)


def write_ts(path, series_labels, length=20, dimensions=3, seed=5):
    rng = np.random.default_rng(seed)
    lines = [
        "#A comment line, as in aeon's BasicMotions files",
        "@problemName Tiny",
        "@timeStamps false",
        "@missing false",
        "@univariate false",
        f"@dimensions {dimensions}",
        "@equalLength true",
        f"@seriesLength {length}",
        "@classLabel true Standing Running",
        "@data",
    ]
    for label in series_labels:
        values = class_signal(["Standing", "Running"].index(label), length, dimensions, rng)
        lines.append(
            ":".join(",".join(f"{value:.6f}" for value in values[:, dimension]) for dimension in range(dimensions))
            + f":{label}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_uea_ts_train_file_pairs_with_its_test_file(tmp_path):
    train = write_ts(tmp_path / "Tiny_TRAIN.ts", ["Standing", "Running"] * 5)
    write_ts(tmp_path / "Tiny_TEST.ts", ["Running", "Standing", "Running"], seed=6)
    source = read_har_source(str(train), HarOptions(val_fraction=0.2))
    assert source.kind == "uea-ts" and source.classes == ["Standing", "Running"]
    assert source.windows.x.shape == (13, 20, 3)
    counts = {split: int((source.windows.splits == split).sum()) for split in ("train", "val", "test")}
    assert counts == {"train": 8, "val": 2, "test": 3}
    assert source.windows.y[source.windows.splits == "test"].tolist() == [1, 0, 1]


def test_uea_ts_label_not_declared(tmp_path):
    path = write_ts(tmp_path / "Bad_TRAIN.ts", ["Standing", "Running"])
    path.write_text(path.read_text().replace(":Running\n", ":Jumping\n"))
    with pytest.raises(DataError, match="label 'Jumping', not among @classLabel"):
        read_har_source(str(path), HarOptions())


def test_a_recording_shorter_than_the_window_is_skipped_not_fatal(tmp_path, caplog):
    path = write_long_csv(tmp_path / "w.csv", subjects=(1, 2, 3), samples_per_activity=96)
    frame = pd.read_csv(path)
    frame = frame[(frame["user"] != 3) | (frame["timestamp"] < 50 * 20)]  # user 3: 20 readings only
    frame.to_csv(path, index=False)
    logger = logging.getLogger("dltrain")  # the CLI may have turned its propagation off
    logger.addHandler(caplog.handler)
    try:
        source = read_har_source(str(path), HarOptions(window=32, step=16))
    finally:
        logger.removeHandler(caplog.handler)
    assert set(source.windows.subjects) == {1, 2}
    assert source.notes["skipped_short_recordings"] == 1
    assert "skipped 1 recording(s) shorter than the window of 32" in caplog.text


# ---------------------------------------------------------------------------------------------
# Split rules, reader detection, labels of long CSVs with gaps, prediction without training labels
# ---------------------------------------------------------------------------------------------


def test_subject_split_never_puts_a_subject_in_two_splits():
    subjects = np.repeat(np.arange(1, 11), 7)
    labels = np.zeros(len(subjects), np.int64)
    labels[subjects == 10] = UNLABELLED  # unlabelled windows take no part in choosing subjects
    ids = np.arange(len(subjects)).astype(str)
    windows = WindowSet.of(np.zeros((len(subjects), 4, 1)), labels, subjects, ids, SPLIT_BY_SUBJECT)
    splits = split_by_subject(windows, HarOptions(val_fraction=0.2, test_fraction=0.2, seed=1), "test source")
    labelled = labels != UNLABELLED
    for subject in range(1, 10):
        assert len(set(splits[subjects == subject])) == 1
    subject_counts = {name: len(set(subjects[labelled & (splits == name)])) for name in ("train", "val", "test")}
    assert subject_counts == {"train": 5, "val": 2, "test": 2}
    assert (splits[subjects == 10] == SPLIT_BY_SUBJECT).all()


def test_subject_split_keeps_a_test_split_the_source_gave():
    splits = np.array(["test"] * 3 + [SPLIT_BY_SUBJECT] * 6)
    subjects = [1, 1, 1, 2, 3, 4, 5, 6, 7]
    windows = WindowSet.of(np.zeros((9, 4, 1)), np.zeros(9), subjects, np.arange(9).astype(str), splits)
    chosen = split_by_subject(windows, HarOptions(val_fraction=0.2), "test source")
    assert (chosen[:3] == "test").all() and set(chosen[3:]) == {"train", "val"}


def test_subject_split_refuses_windows_without_subject_or_split():
    windows = WindowSet.of(np.zeros((2, 4, 1)), [0, 1], UNKNOWN_SUBJECT, ["a", "b"], SPLIT_BY_SUBJECT)
    with pytest.raises(DataError, match="neither a subject nor a split"):
        split_by_subject(windows, HarOptions(), "test source")


def test_last_share_of_each_class_is_validation_then_test():
    classes = ["a", "b"] * 5 + ["c"] * 3
    splits = last_share_per_class(classes, val_fraction=0.2, test_fraction=0.4)
    by_class = {name: [split for split, value in zip(splits, classes) if value == name] for name in "abc"}
    assert by_class["a"] == ["train", "train", "val", "test", "test"]
    assert by_class["b"] == by_class["a"]
    assert by_class["c"] == ["train", "val", "test"]
    assert last_share_per_class(["a"] * 5, val_fraction=0.4, test_fraction=0.0) == ["train"] * 3 + ["val"] * 2


def test_time_blocks_exclude_windows_straddling_two_blocks():
    assert time_blocks(100, 0.2, 0.2) == [(0, 60, "train"), (60, 80, "val"), (80, 100, "test")]
    starts = np.arange(0, 91, 5)
    splits = time_block_splits(starts, window=10, count=100, val_fraction=0.2, test_fraction=0.2)
    for start, split in zip(starts, splits):
        inside = [name for low, high, name in time_blocks(100, 0.2, 0.2) if low <= start and start + 10 <= high]
        assert split == (inside[0] if inside else EXCLUDED)
    assert [splits[starts == start][0] for start in (50, 55, 60)] == ["train", EXCLUDED, "val"]
    with pytest.raises(UsageError, match="must be below 1"):
        time_blocks(100, 0.5, 0.5)


def test_each_reader_detects_its_own_layout(tmp_path, uci_folder, classroom_folder, long_csv):
    ts_file = write_ts(tmp_path / "Tiny_TRAIN.ts", ["Standing", "Running"])
    assert uea.detect(ts_file) and not uea.detect(long_csv) and not uea.detect(tmp_path)
    assert long_csv_reader.detect(long_csv) and not long_csv_reader.detect(classroom_folder)
    assert uci.detect(uci_folder) and uci.detect(uci_folder.parent) and not uci.detect(classroom_folder)
    assert not uci.detect(long_csv)
    assert classroom.detect(classroom_folder) and not classroom.detect(long_csv)
    # The registry asks the more specific reader first: .ts before any file, UCI before any folder.
    assert READERS.index(uea) < READERS.index(long_csv_reader) and READERS.index(uci) < READERS.index(classroom)


def write_gapped_csv(path, gap=(100, 160), count=300):
    """One subject; channel x is the row number; labels A before the gap, none inside it, B after."""
    rows = np.arange(count)
    labels = np.where(rows < gap[0], "A", np.where(rows < gap[1], "", "B"))
    frame = pd.DataFrame({"user": 1, "time": rows, "x": rows.astype(float), "activity": labels})
    frame.loc[frame["activity"] == "", "activity"] = None
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("pure", [False, True])
def test_long_csv_windows_never_join_the_two_sides_of_a_gap_in_labels(tmp_path, pure):
    path = write_gapped_csv(tmp_path / "gap.csv")
    source = read_har_source(str(path), HarOptions(window=32, step=16, pure_windows=pure))
    rows = source.windows.x[:, :, 0]
    assert len(rows) == (300 - 32) // 16 + 1  # every window of the stream, over the gap too
    assert (np.diff(rows, axis=1) == 1).all()  # each window is contiguous readings
    labelled = source.windows.y != UNLABELLED
    assert source.classes == ["A", "B"]
    assert not ((rows[labelled] < 100).any(axis=1) & (rows[labelled] >= 160).any(axis=1)).any()
    inside_gap = ((rows >= 100) & (rows < 160)).mean(axis=1)
    assert not labelled[inside_gap > 0.5].any()  # mostly unlabelled rows: an unlabelled window
    if pure:
        assert not labelled[inside_gap > 0].any()
    else:
        assert labelled[(inside_gap > 0) & (inside_gap < 0.5)].any()


def test_prediction_reads_a_long_csv_with_one_class_only(tmp_path):
    path = write_long_csv(tmp_path / "w.csv", subjects=(1, 2), samples_per_activity=64)
    frame = pd.read_csv(path)
    frame = frame[frame["activity"] == "Walking"]
    frame.to_csv(path, index=False)
    classes = ["Jogging", "Sitting", "Walking"]
    run_meta = HarMeta(
        window=32,
        step=16,
        channels=["x", "y", "z"],
        classes=classes,
        input_shape=[32, 3],
        splits={},
        normalization=Normalization(mean=[0.0] * 3, std=[1.0] * 3),
    )
    x, ids = windows_from_source(str(path), run_meta)
    assert x.shape == (2 * 3, 32, 3) and len(set(ids)) == 6
    with pytest.raises(DataError, match="holds 1 distinct label.*need at least 2 classes"):
        prepare_har(str(path), tmp_path / "data", HarOptions(window=32))
    assert not (tmp_path / "data").exists()


def test_prediction_on_a_uci_folder_takes_the_trained_step_and_lacks_no_label_file(uci_folder, tmp_path):
    (uci_folder / "test" / "y_test.txt").unlink()
    source = read_har_source(str(uci_folder), HarOptions(window=32, step=16))  # as predict passes a HAPT run's
    assert (source.windows.splits[source.windows.y == UNLABELLED] == "unlabelled").all()
    assert (source.windows.y[source.windows.splits == "test"] >= 0).all() and len(source.windows.x) == 42
    with pytest.raises(DataError, match=r"UCI HAR folder is missing .*y_test.txt"):
        prepare_har(str(uci_folder), tmp_path / "data", HarOptions())
    with pytest.raises(UsageError, match="--step does not apply to a UCI HAR folder"):
        prepare_har(str(uci_folder), tmp_path / "data", HarOptions(step=16))
