"""CSV sources: the classroom folders of per-class CSV series, and one long (WISDM-like) CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dltrain.core.console import progress_bar
from dltrain.core.errors import DataError, UsageError
from dltrain.data.har.types import (
    SPLIT_BY_SUBJECT,
    UNKNOWN_SUBJECT,
    UNLABELLED,
    HarOptions,
    HarSource,
    WindowSet,
    check_finite,
    select_channels,
)
from dltrain.data.har.windows import ShortRecordings, cut_windows, majority_labels

CLASSROOM_SPLIT_FOLDERS = {"train": "train", "validation": "val", "valid": "val", "val": "val", "test": "test"}


def numeric_columns(frame: pd.DataFrame, columns: list[str], origin: str) -> np.ndarray:
    """The named columns as float32, or a DataError naming the first non-numeric cell."""
    values = []
    for column in columns:
        series = frame[column]
        if series.dtype == object or pd.api.types.is_string_dtype(series):
            # WISDM's raw file ends each line with ';', which must not make the last column text.
            series = series.astype(str).str.strip().str.rstrip(";")
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna() & series.notna() & (series.astype(str).str.strip().str.lower() != "nan")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{origin}: column {column!r} row {row + 1}: {series.iloc[row]!r} is not a number")
        values.append(converted.to_numpy(np.float32))
    matrix = np.stack(values, axis=1) if values else np.zeros((len(frame), 0), np.float32)
    check_finite(matrix, f"{origin} (rows, channels)")
    return matrix


def read_series_csv(path: Path) -> pd.DataFrame:
    """One series: index column, then one column per feature. A file without a header row (every
    column name a number) is read again headerless, its features named by position."""
    frame = _read_csv(path, index_col=0)
    if len(frame.columns) and all(_is_number(str(column)) for column in frame.columns):
        frame = _read_csv(path, index_col=0, header=None)
        frame.columns = [f"feature_{position}" for position in range(len(frame.columns))]
    return frame


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_csv(path: Path, **kwargs) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise DataError(f"{path}: not a readable CSV ({str(error).splitlines()[0]})") from None


# ---------------------------------------------------------------------------------------------
# Classroom layout: root/{train,validation,test}/<class>/*.csv, or root/<class>/*.csv
# ---------------------------------------------------------------------------------------------


def _csv_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.suffix.lower() == ".csv" and path.is_file())


def _class_folders(folder: Path) -> dict[str, list[Path]]:
    return {child.name: _csv_files(child) for child in sorted(folder.iterdir()) if child.is_dir() and _csv_files(child)}


def _classroom_listing(root: Path, options: HarOptions) -> list[tuple[str, str | None, Path]]:
    """(split, class name or None, file) for every series; splits by contiguous blocks if none given."""
    split_folders = {name: root / name for name in CLASSROOM_SPLIT_FOLDERS if (root / name).is_dir()}
    listing: list[tuple[str, str | None, Path]] = []
    if split_folders:
        for folder_name, folder in split_folders.items():
            split = CLASSROOM_SPLIT_FOLDERS[folder_name]
            for class_name, files in _class_folders(folder).items():
                listing.extend((split, class_name, path) for path in files)
            # An unlabelled test/ holds its series directly, for predict.
            listing.extend(("unlabelled", None, path) for path in _csv_files(folder))
        return listing
    for class_name, files in _class_folders(root).items():
        # No subjects are known, so validation/test are the last files of each class in name
        # order (contiguous blocks), never a random pick of overlapping windows.
        count = len(files)
        test_count = int(round(count * options.test_fraction))
        val_count = int(round(count * options.val_fraction))
        for position, path in enumerate(files):
            if position >= count - test_count:
                split = "test"
            elif position >= count - test_count - val_count:
                split = "val"
            else:
                split = "train"
            listing.append((split, class_name, path))
    # Series lying directly in the root (e.g. the course's test/ folder itself) are unlabelled.
    listing.extend(("unlabelled", None, path) for path in _csv_files(root))
    return listing


def read_classroom(root: Path, options: HarOptions, for_prediction: bool = False) -> HarSource:
    if not root.is_dir():
        raise DataError(f"{root} is not a folder")
    listing = _classroom_listing(root, options)
    if not listing:
        raise DataError(
            f"{root}: no CSV series found; expected train/ and validation/ folders of class folders (a01/*.csv ...), "
            "a folder of class folders, or a UCI HAR Dataset folder"
        )
    classes = sorted({class_name for _, class_name, _ in listing if class_name is not None})
    if not classes and not for_prediction:
        raise DataError(f"{root}: found CSV series but no class folders to learn labels from")

    series: list[np.ndarray] = []
    channels: list[str] | None = None
    channel_index: list[int] = []
    with progress_bar("reading CSV series", len(listing)) as advance:
        for _split, _class_name, path in listing:
            frame = read_series_csv(path)
            if channels is None:
                channels = [str(column) for column in frame.columns]
                channel_index = select_channels(channels, options.channels, channels, str(path))
                if not channel_index:
                    raise DataError(f"{path}: no feature columns after the index column")
            elif [str(column) for column in frame.columns] != channels:
                raise DataError(f"{path}: columns {list(frame.columns)} differ from the first series' {channels}")
            series.append(numeric_columns(frame, [channels[index] for index in channel_index], str(path)))
            advance()

    lengths = {len(values) for values in series}
    if options.window is None:
        if len(lengths) > 1:
            shortest = min(range(len(series)), key=lambda index: len(series[index]))
            longest = max(range(len(series)), key=lambda index: len(series[index]))
            raise DataError(
                f"CSV series of unequal length ({listing[shortest][2]} has {len(series[shortest])} rows, "
                f"{listing[longest][2]} has {len(series[longest])}); pass --window to cut them into equal windows"
            )
        window, step = lengths.pop(), None
    else:
        window, step = options.window, options.resolved_step(options.window)

    parts = []
    short = ShortRecordings(window)
    for (split, class_name, path), values in zip(listing, series):
        relative = path.relative_to(root).as_posix()
        label = UNLABELLED if class_name is None or for_prediction else classes.index(class_name)
        if step is None:
            x, ids = values[None], [relative]
        else:
            if not short.fits(len(values), str(path)):
                continue
            x, starts = cut_windows(values, window, step)
            ids = [f"{relative}#{start}" for start in starts]
        parts.append(WindowSet.of(x, np.full(len(x), label), UNKNOWN_SUBJECT, ids, "unlabelled" if for_prediction else split))
    return HarSource(
        kind="classroom",
        path=str(root),
        channels=[channels[index] for index in channel_index],
        classes=classes,
        windows=WindowSet.concatenate(parts, window, len(channel_index)),
        window=window,
        step=step,
        sample_rate_hz=options.sample_rate_hz,
        notes={"series_files": len(listing), "skipped_short_recordings": short.report(sum(len(part.x) for part in parts))},
    )


# ---------------------------------------------------------------------------------------------
# Long CSV: one row per sample with subject, time, channel and label columns (WISDM-like)
# ---------------------------------------------------------------------------------------------


def _pick_column(frame: pd.DataFrame, requested: str | None, candidates: tuple[str, ...], option: str, path: Path, required: bool) -> str | None:
    columns = [str(column) for column in frame.columns]
    if requested is not None:
        if requested not in columns:
            raise DataError(f"{path}: no column {requested!r} ({option}); columns: {', '.join(columns)}")
        return requested
    lowered = {column.lower(): column for column in columns}
    for candidate in candidates:
        if candidate in lowered:
            return lowered[candidate]
    if required:
        raise DataError(f"{path}: no {'/'.join(candidates)} column; name it with {option} (columns: {', '.join(columns)})")
    return None


def read_long_csv(path: Path, options: HarOptions, for_prediction: bool = False) -> HarSource:
    frame = _read_csv(path)
    frame.columns = [str(column).strip() for column in frame.columns]
    label_column = _pick_column(frame, options.label_column, ("label", "activity"), "--label-column", path, required=not for_prediction)
    time_column = _pick_column(frame, options.time_column, ("time", "timestamp"), "--time-column", path, required=True)
    subject_column = _pick_column(frame, options.subject_column, ("subject", "user"), "--subject-column", path, required=False)
    reserved = {label_column, time_column, subject_column} - {None}
    if options.channels is None:
        candidates = [column for column in frame.columns if column not in reserved]
        numeric = [column for column in candidates if pd.api.types.is_numeric_dtype(frame[column]) or _mostly_numeric(frame[column])]
        if not numeric:
            raise DataError(f"{path}: no numeric channel columns besides {', '.join(sorted(reserved))}")
        channel_names = numeric
    else:
        available = [column for column in frame.columns if column not in reserved]
        channel_names = [available[index] for index in select_channels(available, options.channels, available, str(path))]

    if label_column is not None:
        missing_label = frame[label_column].isna()
        if missing_label.any() and not for_prediction:
            frame = frame[~missing_label]
    if frame.empty:
        raise DataError(f"{path}: no rows with a label")
    times = parse_times(frame[time_column], time_column, path)
    time_text = frame[time_column].astype(str).str.strip().to_numpy()
    signals = numeric_columns(frame, channel_names, str(path))
    subjects = (
        numeric_columns(frame, [subject_column], str(path))[:, 0].astype(np.int64)
        if subject_column is not None
        else np.full(len(frame), UNKNOWN_SUBJECT, np.int64)
    )
    has_labels = label_column is not None and not for_prediction
    label_text = frame[label_column].astype(str).str.strip().to_numpy() if has_labels else None
    classes = sorted(set(label_text)) if has_labels else []
    if has_labels and len(classes) < 2:
        raise DataError(f"{path}: column {label_column!r} holds {len(classes)} distinct label(s); need at least 2 classes")
    label_index = np.searchsorted(classes, label_text) if has_labels else np.full(len(frame), UNLABELLED)

    window = options.resolved_window()
    step = options.resolved_step(window)
    parts = []
    short = ShortRecordings(window)
    for subject in np.unique(subjects):
        rows = np.flatnonzero(subjects == subject)
        rows = rows[np.argsort(times[rows], kind="stable")]
        if subject_column is None and not for_prediction:
            blocks = _time_blocks(len(rows), options)  # no subjects: contiguous blocks of time
        else:
            blocks = [(0, len(rows), "unlabelled" if for_prediction else SPLIT_BY_SUBJECT)]
        for start, stop, split in blocks:
            block = rows[start:stop]
            origin = f"{path} ({subject_column}={subject}, {split or 'all'} rows)" if subject_column else f"{path} ({split} block)"
            if not short.fits(len(block), origin):
                continue
            x, starts = cut_windows(signals[block], window, step)
            if has_labels:
                labels = majority_labels(label_index[block], window, step, len(classes))
                if options.pure_windows:
                    window_labels = np.lib.stride_tricks.sliding_window_view(label_index[block], window)[::step]
                    pure = (window_labels == labels[:, None]).all(axis=1)
                    x, labels, starts = x[pure], labels[pure], starts[pure]
            else:
                labels = np.full(len(x), UNLABELLED)
            prefix = f"{subject}/" if subject_column is not None else ""
            ids = [f"{prefix}{text}" for text in time_text[block][starts]]
            parts.append(WindowSet.of(x, labels, int(subject), ids, split))
    windows = WindowSet.concatenate(parts, window, len(channel_names))
    windows.ids = unique_ids(windows.ids)
    return HarSource(
        kind="long-csv",
        path=str(path),
        channels=list(channel_names),
        classes=classes,
        windows=windows,
        window=window,
        step=step,
        sample_rate_hz=options.sample_rate_hz,
        notes={
            "label_column": label_column,
            "time_column": time_column,
            "subject_column": subject_column,
            "skipped_short_recordings": short.report(sum(len(part.x) for part in parts)),
        },
    )


def parse_times(series: pd.Series, column: str, path: Path) -> np.ndarray:
    """Numbers as they are, or date-times (e.g. Daphnet's '1970-01-01 00:04:40.015') in seconds."""
    numbers = pd.to_numeric(series, errors="coerce")
    if numbers.notna().all():
        return numbers.to_numpy(np.float64)
    stamps = pd.to_datetime(series, errors="coerce")  # one format inferred: fast on big files
    if stamps.isna().any():
        stamps = pd.to_datetime(series, errors="coerce", format="mixed")
    if stamps.notna().all():
        return (stamps - stamps.min()).dt.total_seconds().to_numpy(np.float64)
    row = int(np.flatnonzero((numbers.isna() & stamps.isna()).to_numpy())[0])
    raise DataError(f"{path}: column {column!r} row {row + 1}: {series.iloc[row]!r} is neither a number nor a date-time")


def unique_ids(ids: np.ndarray) -> np.ndarray:
    """Window ids are start times; repeated times (WISDM has some) get '#2', '#3'... appended."""
    seen: dict[str, int] = {}
    result = []
    for identifier in ids:
        count = seen.get(identifier, 0) + 1
        seen[identifier] = count
        result.append(identifier if count == 1 else f"{identifier}#{count}")
    return np.asarray(result, dtype=str)


def _mostly_numeric(series: pd.Series) -> bool:
    sample = series.dropna().astype(str).str.strip().str.rstrip(";").head(100)
    return len(sample) > 0 and pd.to_numeric(sample, errors="coerce").notna().all()


def _time_blocks(count: int, options: HarOptions) -> list[tuple[int, int, str]]:
    if options.val_fraction + options.test_fraction >= 1:
        raise UsageError("--val-fraction plus --test-fraction must be below 1")
    train_stop = int(round(count * (1 - options.val_fraction - options.test_fraction)))
    val_stop = int(round(count * (1 - options.test_fraction)))
    blocks = [(0, train_stop, "train"), (train_stop, val_stop, "val"), (val_stop, count, "test")]
    return [(start, stop, split) for start, stop, split in blocks if stop > start]
