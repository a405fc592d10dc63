"""The `UCI HAR Dataset` folder: {train,test}/Inertial Signals/*_{split}.txt, y_{split}.txt, subject_{split}.txt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dltrain.core.errors import DataError, UsageError
from dltrain.data.har.types import (
    SPLIT_BY_SUBJECT,
    UCI_CHANNELS,
    UNLABELLED,
    HarOptions,
    HarSource,
    WindowSet,
    check_finite,
    select_channels,
)
from dltrain.data.har.readers.hapt import HAPT_ACTIVITIES

UCI_SPLITS = ("train", "test")
UCI_SAMPLE_RATE_HZ = 50.0


def find_uci_root(path: Path) -> Path | None:
    """`path` itself or its `UCI HAR Dataset` child, if either has a split with Inertial Signals."""
    for candidate in (path, path / "UCI HAR Dataset"):
        if any((candidate / split / "Inertial Signals").is_dir() for split in UCI_SPLITS):
            return candidate
    return None


def _read_matrix(path: Path, dtype) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"UCI HAR folder is missing {path}")
    try:
        frame = pd.read_csv(path, sep=r"\s+", header=None, dtype=dtype, engine="c")
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty") from None
    except (ValueError, pd.errors.ParserError) as error:
        raise DataError(f"{path}: not a whitespace-separated table of numbers ({str(error).splitlines()[0]})") from None
    # pandas pads a short row with NaN: name the row instead of reporting a NaN later.
    short = frame.isna().any(axis=1).to_numpy()
    if short.any():
        row = int(np.argmax(short))
        count = int(frame.iloc[row].notna().sum())
        raise DataError(f"{path} line {row + 1}: {count} values where the other lines have {frame.shape[1]}")
    return frame.to_numpy()


def _read_class_names(root: Path) -> list[str]:
    labels_file = root / "activity_labels.txt"
    if not labels_file.is_file():
        return list(HAPT_ACTIVITIES)
    rows = [line.split() for line in labels_file.read_text().splitlines() if line.strip()]
    try:
        numbered = sorted((int(row[0]), row[1]) for row in rows)
    except (ValueError, IndexError):
        raise DataError(f"{labels_file}: expected lines 'NUMBER NAME'") from None
    if [number for number, _ in numbered] != list(range(1, len(numbered) + 1)):
        raise DataError(f"{labels_file}: activity numbers must run 1..N")
    return [name for _, name in numbered]


def read_uci(root: Path, options: HarOptions, for_prediction: bool = False) -> HarSource:
    if options.step is not None and not for_prediction:
        raise UsageError("--step does not apply to a UCI HAR folder: its windows are already cut")
    channel_index = select_channels(UCI_CHANNELS, options.channels, UCI_CHANNELS, str(root))
    classes = _read_class_names(root)
    parts = []
    window = None
    for split in UCI_SPLITS:
        signals_dir = root / split / "Inertial Signals"
        if not signals_dir.is_dir():
            if split == "train" and not for_prediction:
                raise DataError(f"{root}: no train/Inertial Signals folder")
            continue
        channels = []
        for index in channel_index:
            path = signals_dir / f"{UCI_CHANNELS[index]}_{split}.txt"
            matrix = _read_matrix(path, np.float32)
            if channels and matrix.shape != channels[0].shape:
                raise DataError(f"{path}: {matrix.shape[0]} rows of {matrix.shape[1]} values, but the other signal files have {channels[0].shape[0]} rows of {channels[0].shape[1]}")
            channels.append(matrix)
        x = np.stack(channels, axis=2)
        check_finite(x, str(signals_dir))
        if window is not None and x.shape[1] != window:
            raise DataError(f"{signals_dir}: windows of {x.shape[1]} readings, but the train windows have {window}")
        window = x.shape[1]
        if options.window is not None and options.window != window and not for_prediction:
            raise UsageError(f"--window {options.window}: the UCI HAR windows are already cut to {window} readings")
        count = len(x)
        subjects = _read_vector(root / split / f"subject_{split}.txt", count, required=not for_prediction)
        ids = [f"{split}/{row:05d}" for row in range(1, count + 1)]
        if for_prediction:
            parts.append(WindowSet.of(x, np.full(count, UNLABELLED), 0, ids, "unlabelled"))
            parts[-1].subjects = subjects
            continue
        labels = _read_vector(root / split / f"y_{split}.txt", count, required=True)
        if labels.min() < 1 or labels.max() > len(classes):
            raise DataError(f"{root / split / f'y_{split}.txt'}: labels must lie in 1..{len(classes)} (activity_labels.txt), found {labels.min()}..{labels.max()}")
        part = WindowSet.of(x, labels - 1, 0, ids, "test" if split == "test" else SPLIT_BY_SUBJECT)
        part.subjects = subjects
        parts.append(part)
    if not parts:
        raise DataError(f"{root}: no Inertial Signals found under train/ or test/")
    return HarSource(
        kind="uci-har",
        path=str(root),
        channels=[UCI_CHANNELS[index] for index in channel_index],
        classes=classes,
        windows=WindowSet.concatenate(parts, window, len(channel_index)),
        window=window,
        step=None,
        sample_rate_hz=UCI_SAMPLE_RATE_HZ,
    )


def _read_vector(path: Path, count: int, required: bool) -> np.ndarray:
    if not path.is_file():
        if required:
            raise DataError(f"UCI HAR folder is missing {path}")
        return np.full(count, -1, np.int64)
    matrix = _read_matrix(path, np.float64)
    if matrix.shape != (count, 1):
        raise DataError(f"{path}: expected {count} rows of one integer (one per window), got {matrix.shape[0]} rows of {matrix.shape[1]}")
    values = matrix[:, 0]
    if not np.isfinite(values).all() or (values != np.round(values)).any():
        raise DataError(f"{path}: values must be integers")
    return values.astype(np.int64)
