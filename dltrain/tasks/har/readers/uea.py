"""UEA/UCR `.ts` files (e.g. aeon's BasicMotions): one multivariate series per line, label last.

    @problemName BasicMotions
    @dimensions 6
    @classLabel true Standing Running Walking Badminton
    @data
    0.07,0.07,...:0.39,...:...:Standing

`X_TRAIN.ts` is the train part; a sibling `X_TEST.ts` becomes the test split. No subjects are
known, so validation is the last share of each class's series in file order.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from dltrain.core.errors import DataError
from dltrain.tasks.har.splits import last_share_per_class
from dltrain.tasks.har.types import (
    UNKNOWN_SUBJECT,
    UNLABELLED,
    HarOptions,
    HarSource,
    WindowSet,
    check_finite,
    select_channels,
)
from dltrain.tasks.har.windows import ShortRecordings, series_windows


class TsFile(NamedTuple):
    """A parsed .ts file."""

    path: Path
    series: list[np.ndarray]  # each (length, dimensions)
    labels: list[str | None]  # one per series; None in a file without class labels
    declared: list[str]  # the @classLabel list, in its order


def detect(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".ts"


def read_ts_file(path: Path) -> TsFile:
    """Parse one .ts file: the header's class labels, then one series (and its label) per data line."""
    declared: list[str] = []
    has_labels = False
    series, labels = [], []
    in_data = False
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read as text ({error})") from None
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            words = line.split()
            keyword = words[0].lower()
            if keyword == "@timestamps" and len(words) > 1 and words[1].lower() == "true":
                raise DataError(f"{path}: .ts files with time stamps are not supported")
            if keyword == "@classlabel":
                has_labels = len(words) > 1 and words[1].lower() == "true"
                declared = words[2:]
            in_data = keyword == "@data"
            continue
        fields = line.split(":")
        label = fields.pop().strip() if has_labels else None
        try:
            dimensions = [np.array([float(value) for value in field.split(",")], dtype=np.float32) for field in fields]
        except ValueError:
            raise DataError(f"{path}: line {number}: a value is not a number") from None
        if len({len(dimension) for dimension in dimensions}) != 1:
            raise DataError(f"{path}: line {number}: dimensions of unequal length")
        values = np.stack(dimensions, axis=1)
        check_finite(values, f"{path} line {number}")
        if series and values.shape[1] != series[0].shape[1]:
            raise DataError(
                f"{path}: line {number} has {values.shape[1]} dimensions, the first series {series[0].shape[1]}"
            )
        series.append(values)
        labels.append(label)
    if not in_data or not series:
        raise DataError(f"{path}: no @data section with series")
    return TsFile(path, series, labels, declared)


def read(path: Path, options: HarOptions) -> HarSource:
    files = train_and_test(path)
    train = files["train"]
    for ts in files.values():  # a test file of other dimensions would fail deep inside numpy
        if ts.series[0].shape[1] != train.series[0].shape[1]:
            raise DataError(
                f"{ts.path}: {ts.series[0].shape[1]} dimensions, but {train.path} has {train.series[0].shape[1]}"
            )
    classes = train.declared or sorted({label for ts in files.values() for label in ts.labels if label is not None})
    channels = [f"dim_{index}" for index in range(train.series[0].shape[1])]
    channel_index = select_channels(channels, options.channels, channels, str(path))
    window, step = ts_window(path, files, options)
    short = ShortRecordings(window)
    parts = []
    for split, ts in files.items():
        # No subjects are known: validation is the last share of each class's train series.
        if split == "train":
            splits = last_share_per_class(ts.labels, options.val_fraction, 0.0)
        else:
            splits = [split] * len(ts.series)
        for index, (values, label, chosen) in enumerate(zip(ts.series, ts.labels, splits)):
            if label is not None and label not in classes:
                raise DataError(f"{ts.path}: series {index + 1} has label {label!r}, not among @classLabel {classes}")
            if not short.fits(len(values), f"{ts.path} series {index + 1}"):
                continue
            x, ids = series_windows(values[:, channel_index], window, step, f"{ts.path.stem}/{index:05d}")
            target = UNLABELLED if label is None else classes.index(label)
            parts.append(WindowSet.of(x, np.full(len(x), target), UNKNOWN_SUBJECT, ids, chosen))
    return HarSource.assemble(
        "uea-ts",
        path,
        [channels[index] for index in channel_index],
        classes,
        parts,
        window,
        step,
        options.sample_rate_hz,
        notes={"files": [str(ts.path) for ts in files.values()]},
        short=short,
        ready_cut=".ts series used whole (no --window)" if step is None else None,
    )


def train_and_test(path: Path) -> dict[str, TsFile]:
    """The file given as the train split, and its `_TEST.ts` sibling (if any) as the test split."""
    files = {"train": read_ts_file(path)}
    if path.stem.upper().endswith("_TRAIN"):
        test_path = path.with_name(path.stem[: -len("_TRAIN")] + "_TEST" + path.suffix)
        if test_path.is_file():
            files["test"] = read_ts_file(test_path)
    return files


def ts_window(path: Path, files: dict[str, TsFile], options: HarOptions) -> tuple[int, int | None]:
    """(window, step): the series' common length and no step, or --window and its step."""
    if options.window is not None:
        return options.window, options.resolved_step(options.window)
    lengths = {len(values) for ts in files.values() for values in ts.series}
    if len(lengths) > 1:
        raise DataError(
            f"{path}: series of unequal length ({min(lengths)} to {max(lengths)}); pass --window to cut them"
        )
    return lengths.pop(), None
