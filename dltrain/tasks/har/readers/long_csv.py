"""One long CSV (WISDM-like; also Daphnet's layout in aeon): a row per reading with a time column,
channel columns, and optionally subject and label columns.

Windows are cut over each subject's whole stream in time order (over the whole file without a
subject column). A window takes the majority label of its rows, where rows without a label count
as a contender, so a window mostly over unlabelled rows is unlabelled and stays out of training
while prediction still gets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dltrain.core.errors import DataError, UsageError
from dltrain.tasks.har.readers.tables import (
    is_mostly_numeric,
    missing_column_text,
    numeric_columns,
    parse_times,
    pick_column,
    read_table,
)
from dltrain.tasks.har.splits import time_block_splits
from dltrain.tasks.har.types import (
    SPLIT_BY_SUBJECT,
    UNKNOWN_SUBJECT,
    UNLABELLED,
    HarOptions,
    HarSource,
    WindowSet,
    select_channels,
)
from dltrain.tasks.har.windows import ShortRecordings, cut_windows, label_counts, window_starts

LABEL_NAMES = ("label", "activity")
TIME_NAMES = ("time", "timestamp")
SUBJECT_NAMES = ("subject", "user")


@dataclass
class LongTable:
    """The columns of a long CSV that windows are cut from, one row per reading."""

    signals: np.ndarray  # (rows, channels) float32
    times: np.ndarray  # (rows,) numbers or seconds, for ordering
    time_text: np.ndarray  # (rows,) the time cells as written, for window ids
    subjects: np.ndarray  # (rows,) subject id, or UNKNOWN_SUBJECT without a subject column
    labels: np.ndarray  # (rows,) class index, or UNLABELLED
    classes: list[str]
    channels: list[str]
    columns: dict[str, str | None]  # label_column, time_column, subject_column as found
    training_refusals: list[str]


def detect(path: Path) -> bool:
    """Any file; the registry asks the `.ts` reader first."""
    return path.is_file()


def read(path: Path, options: HarOptions) -> HarSource:
    table = read_long_table(path, options)
    window = options.resolved_window()
    step = options.resolved_step(window)
    subject_column = table.columns["subject_column"]
    short = ShortRecordings(window)
    parts = []
    for subject in np.unique(table.subjects):
        rows = np.flatnonzero(table.subjects == subject)
        rows = rows[np.argsort(table.times[rows], kind="stable")]
        origin = f"{path} ({subject_column}={subject})" if subject_column else str(path)
        if short.fits(len(rows), origin):
            parts.append(stream_windows(table, rows, int(subject), window, step, options))
    source = HarSource.assemble(
        "long-csv",
        path,
        table.channels,
        table.classes,
        parts,
        window,
        step,
        options.sample_rate_hz,
        notes=dict(table.columns),
        short=short,
        training_refusals=table.training_refusals,
    )
    source.windows.ids = unique_ids(source.windows.ids)
    return source


def stream_windows(
    table: LongTable, rows: np.ndarray, subject: int, window: int, step: int, options: HarOptions
) -> WindowSet:
    """The windows of one stream (a subject's rows, or the whole file, in time order)."""
    x, starts = cut_windows(table.signals[rows], window, step)
    labels = window_labels(table.labels[rows], window, step, len(table.classes), options.pure_windows)
    if table.columns["subject_column"] is None:
        # No subjects: contiguous blocks of time are the splits.
        splits = time_block_splits(starts, window, len(rows), options.val_fraction, options.test_fraction)
        prefix = ""
    else:
        splits = SPLIT_BY_SUBJECT
        prefix = f"{subject}/"
    ids = [f"{prefix}{text}" for text in table.time_text[rows][starts]]
    return WindowSet.of(x, labels, subject, ids, splits)


def window_labels(labels: np.ndarray, window: int, step: int, num_classes: int, pure: bool) -> np.ndarray:
    """Each window's label from its rows': the most frequent class (ties to the lower index), or
    UNLABELLED where rows without a label are at least as many; with `pure`, UNLABELLED unless
    every row of the window has that class."""
    if num_classes == 0:
        return np.full(len(window_starts(len(labels), window, step)), UNLABELLED, np.int64)
    counts = label_counts(labels, window, step, num_classes)
    best = counts.argmax(axis=1)
    top = counts.max(axis=1)
    labelled = top == window if pure else top > window - counts.sum(axis=1)
    return np.where(labelled, best, UNLABELLED)


def read_long_table(path: Path, options: HarOptions) -> LongTable:
    frame = read_table(path)
    frame.columns = [str(column).strip() for column in frame.columns]
    if frame.empty:
        raise DataError(f"{path}: no rows")
    label_column = pick_column(frame, options.label_column, LABEL_NAMES, "--label-column", path, required=False)
    time_column = pick_column(frame, options.time_column, TIME_NAMES, "--time-column", path, required=True)
    subject_column = pick_column(frame, options.subject_column, SUBJECT_NAMES, "--subject-column", path, required=False)
    columns = {"label_column": label_column, "time_column": time_column, "subject_column": subject_column}
    names = [name for name in columns.values() if name is not None]
    if len(set(names)) != len(names):  # e.g. --label-column equal to the time column
        duplicate = next(name for name in names if names.count(name) > 1)
        naming = [f"--{option.replace('_', '-')}" for option, name in columns.items() if name == duplicate]
        raise UsageError(f"{' and '.join(naming)} both name column {duplicate!r}; give each its own")
    channels = channel_columns(frame, {name for name in columns.values() if name is not None}, options, path)
    times = parse_times(frame[time_column], time_column, path)
    signals = numeric_columns(frame, channels, str(path))
    subjects = subject_ids(frame, subject_column, path)
    labels, classes, refusals = row_labels(frame, label_column, path)
    return LongTable(
        signals=signals,
        times=times,
        time_text=frame[time_column].astype(str).str.strip().to_numpy(),
        subjects=subjects,
        labels=labels,
        classes=classes,
        channels=channels,
        columns=columns,
        training_refusals=refusals,
    )


def channel_columns(frame: pd.DataFrame, reserved: set[str], options: HarOptions, path: Path) -> list[str]:
    """The channels asked for with --channels, else every numeric column that is not reserved."""
    available = [column for column in frame.columns if column not in reserved]
    if options.channels is not None:
        return [available[index] for index in select_channels(available, options.channels, available, str(path))]
    numeric = [column for column in available if is_mostly_numeric(frame[column])]
    if not numeric:
        raise DataError(f"{path}: no numeric channel columns besides {', '.join(sorted(reserved))}")
    return numeric


def subject_ids(frame: pd.DataFrame, subject_column: str | None, path: Path) -> np.ndarray:
    """Whole-number subject ids (a fractional one would be silently truncated, merging subjects)."""
    if subject_column is None:
        return np.full(len(frame), UNKNOWN_SUBJECT, np.int64)
    values = numeric_columns(frame, [subject_column], str(path))[:, 0].astype(np.float64)
    fractional = np.flatnonzero(values != np.round(values))
    if len(fractional):
        row = int(fractional[0])
        raise DataError(
            f"{path}: column {subject_column!r} row {row + 1}: {values[row]!r} is not a whole-number subject id"
        )
    return values.astype(np.int64)


def row_labels(frame: pd.DataFrame, label_column: str | None, path: Path) -> tuple[np.ndarray, list[str], list[str]]:
    """(class index of each row or UNLABELLED where its cell is empty, classes, training refusals).
    Fewer than two classes is fine for prediction, not for training."""
    if label_column is None:
        columns = [str(column) for column in frame.columns]
        refusal = f"{path}: {missing_column_text(LABEL_NAMES, '--label-column', columns)}"
        return np.full(len(frame), UNLABELLED, np.int64), [], [refusal]
    text = frame[label_column].astype(str).str.strip().to_numpy()
    present = frame[label_column].notna().to_numpy() & (text != "")
    classes = sorted(set(text[present].tolist()))
    labels = np.full(len(frame), UNLABELLED, np.int64)
    labels[present] = np.searchsorted(classes, text[present])
    if len(classes) >= 2:
        return labels, classes, []
    refusal = f"{path}: column {label_column!r} holds {len(classes)} distinct label(s); need at least 2 classes"
    return labels, classes, [refusal]


def unique_ids(ids: np.ndarray) -> np.ndarray:
    """Window ids are start times; repeated times (WISDM has some) get '#2', '#3'... appended."""
    seen: dict[str, int] = {}
    result = []
    for identifier in ids:
        count = seen.get(identifier, 0) + 1
        seen[identifier] = count
        result.append(identifier if count == 1 else f"{identifier}#{count}")
    return np.asarray(result, dtype=str)
