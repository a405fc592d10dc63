"""The `UCI HAR Dataset` folder: {train,test}/Inertial Signals/*_{split}.txt, y_{split}.txt, subject_{split}.txt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dltrain.core.errors import DataError
from dltrain.tasks.har.readers.hapt import HAPT_ACTIVITIES
from dltrain.tasks.har.types import (
    SPLIT_BY_SUBJECT,
    UCI_CHANNELS,
    UNKNOWN_SUBJECT,
    UNLABELLED,
    HarOptions,
    HarSource,
    WindowSet,
    check_finite,
    select_channels,
)

UCI_SPLITS = ("train", "test")
UCI_SAMPLE_RATE_HZ = 50.0


def detect(path: Path) -> bool:
    return find_uci_root(path) is not None


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
    try:
        text = labels_file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{labels_file}: not UTF-8 text (expected lines 'NUMBER NAME')") from None
    rows = [line.split() for line in text.splitlines() if line.strip()]
    try:
        numbered = sorted((int(row[0]), row[1]) for row in rows)
    except (ValueError, IndexError):
        raise DataError(f"{labels_file}: expected lines 'NUMBER NAME'") from None
    if [number for number, _ in numbered] != list(range(1, len(numbered) + 1)):
        raise DataError(f"{labels_file}: activity numbers must run 1..N")
    return [name for _, name in numbered]


def read(path: Path, options: HarOptions) -> HarSource:
    """Both splits' windows as UCI HAR cut them; a split without its y_ or subject_ file is read
    unlabelled or without subjects, which prediction accepts and prepare refuses."""
    root = find_uci_root(path) or path
    channel_index = select_channels(UCI_CHANNELS, options.channels, UCI_CHANNELS, str(root))
    classes = _read_class_names(root)
    parts: list[WindowSet] = []
    refusals: list[str] = []
    for split in UCI_SPLITS:
        signals_dir = root / split / "Inertial Signals"
        if not signals_dir.is_dir():
            if split == "train":
                refusals.append(f"{root}: no train/Inertial Signals folder")
            continue
        x = read_signals(signals_dir, split, channel_index)
        if parts and x.shape[1] != parts[0].x.shape[1]:
            raise DataError(
                f"{signals_dir}: windows of {x.shape[1]} readings, but the train windows have {parts[0].x.shape[1]}"
            )
        part, missing = split_windows(root, split, x, classes)
        parts.append(part)
        refusals.extend(f"UCI HAR folder is missing {file}" for file in missing)
    if not parts:
        raise DataError(f"{root}: no Inertial Signals found under train/ or test/")
    return HarSource.assemble(
        "uci-har",
        root,
        [UCI_CHANNELS[index] for index in channel_index],
        classes,
        parts,
        parts[0].x.shape[1],
        None,
        UCI_SAMPLE_RATE_HZ,
        ready_cut="a UCI HAR folder",
        training_refusals=refusals,
    )


def read_signals(signals_dir: Path, split: str, channel_index: list[int]) -> np.ndarray:
    """(windows, readings, channels) from one `*_{split}.txt` file per channel."""
    channels = []
    for index in channel_index:
        path = signals_dir / f"{UCI_CHANNELS[index]}_{split}.txt"
        matrix = _read_matrix(path, np.float32)
        if channels and matrix.shape != channels[0].shape:
            raise DataError(
                f"{path}: {matrix.shape[0]} rows of {matrix.shape[1]} values, "
                f"but the other signal files have {channels[0].shape[0]} rows of {channels[0].shape[1]}"
            )
        channels.append(matrix)
    x = np.stack(channels, axis=2)
    check_finite(x, str(signals_dir))
    return x


def split_windows(root: Path, split: str, x: np.ndarray, classes: list[str]) -> tuple[WindowSet, list[Path]]:
    """(one split's windows, the subject_/y_ files it lacks). Labelled windows of train are split
    later by subject; test is the test split; a split without its y_ file is unlabelled."""
    count = len(x)
    ids = [f"{split}/{row:05d}" for row in range(1, count + 1)]
    subject_file, label_file = root / split / f"subject_{split}.txt", root / split / f"y_{split}.txt"
    subjects, labels = _read_vector(subject_file, count), _read_vector(label_file, count)
    missing = [file for file, values in ((subject_file, subjects), (label_file, labels)) if values is None]
    subjects = UNKNOWN_SUBJECT if subjects is None else subjects
    if labels is None:
        return WindowSet.of(x, np.full(count, UNLABELLED), subjects, ids, "unlabelled"), missing
    if labels.min() < 1 or labels.max() > len(classes):
        raise DataError(
            f"{label_file}: labels must lie in 1..{len(classes)} (activity_labels.txt), "
            f"found {labels.min()}..{labels.max()}"
        )
    return WindowSet.of(x, labels - 1, subjects, ids, "test" if split == "test" else SPLIT_BY_SUBJECT), missing


def _read_vector(path: Path, count: int) -> np.ndarray | None:
    """One integer per window, or None where the file is missing."""
    if not path.is_file():
        return None
    matrix = _read_matrix(path, np.float64)
    if matrix.shape != (count, 1):
        raise DataError(
            f"{path}: expected {count} rows of one integer (one per window), got {matrix.shape[0]} rows of "
            f"{matrix.shape[1]}"
        )
    values = matrix[:, 0]
    if not np.isfinite(values).all() or (values != np.round(values)).any():
        raise DataError(f"{path}: values must be integers")
    return values.astype(np.int64)
