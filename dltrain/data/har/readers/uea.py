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

import numpy as np

from dltrain.core.errors import DataError
from dltrain.data.har.types import UNKNOWN_SUBJECT, UNLABELLED, HarOptions, HarSource, WindowSet, check_finite, select_channels
from dltrain.data.har.windows import ShortRecordings, cut_windows


def read_ts_file(path: Path) -> tuple[list[np.ndarray], list[str | None], list[str]]:
    """(series as (length, dimensions) arrays, labels or None, declared class labels)."""
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
            raise DataError(f"{path}: line {number} has {values.shape[1]} dimensions, the first series {series[0].shape[1]}")
        series.append(values)
        labels.append(label)
    if not in_data or not series:
        raise DataError(f"{path}: no @data section with series")
    return series, labels, declared


def read_uea(path: Path, options: HarOptions, for_prediction: bool = False) -> HarSource:
    parts_by_split = [("train", path)]
    if path.stem.upper().endswith("_TRAIN"):
        test_path = path.with_name(path.stem[: -len("_TRAIN")] + "_TEST" + path.suffix)
        if test_path.is_file():
            parts_by_split.append(("test", test_path))
    loaded = [(split, file, *read_ts_file(file)) for split, file in parts_by_split]
    classes = loaded[0][4] or sorted({label for *_, labels, _ in loaded for label in labels if label is not None})
    channels = [f"dim_{index}" for index in range(loaded[0][2][0].shape[1])]
    channel_index = select_channels(channels, options.channels, channels, str(path))
    lengths = {len(values) for _, _, series, _, _ in loaded for values in series}
    if options.window is None and len(lengths) > 1:
        raise DataError(f"{path}: series of unequal length ({min(lengths)} to {max(lengths)}); pass --window to cut them")
    window = options.window or lengths.pop()
    step = options.resolved_step(window) if options.window else None

    parts = []
    short = ShortRecordings(window)
    for split, file, series, labels, _ in loaded:
        splits = [split] * len(series)
        if split == "train" and not for_prediction:
            splits = _last_share_per_class(labels, options.val_fraction)
        for index, (values, label, chosen) in enumerate(zip(series, labels, splits)):
            if label is not None and label not in classes:
                raise DataError(f"{file}: series {index + 1} has label {label!r}, not among @classLabel {classes}")
            values = values[:, channel_index]
            if not short.fits(len(values), f"{file} series {index + 1}"):
                continue
            x, starts = cut_windows(values, window, step or window)
            target = UNLABELLED if label is None or for_prediction else classes.index(label)
            ids = [f"{file.stem}/{index:05d}" + (f"#{start}" if step else "") for start in starts]
            parts.append(WindowSet.of(x, np.full(len(x), target), UNKNOWN_SUBJECT, ids, "unlabelled" if for_prediction else chosen))
    skipped = short.report(sum(len(part.x) for part in parts))
    return HarSource(
        kind="uea-ts",
        path=str(path),
        channels=[channels[index] for index in channel_index],
        classes=list(classes),
        windows=WindowSet.concatenate(parts, window, len(channel_index)),
        window=window,
        step=step,
        sample_rate_hz=options.sample_rate_hz,
        notes={"files": [str(file) for _, file in parts_by_split], "skipped_short_recordings": skipped},
    )


def _last_share_per_class(labels: list[str | None], fraction: float) -> list[str]:
    splits = ["train"] * len(labels)
    for label in set(labels):
        positions = [index for index, value in enumerate(labels) if value == label]
        count = int(round(len(positions) * fraction))
        for index in positions[len(positions) - count :] if count else []:
            splits[index] = "val"
    return splits
