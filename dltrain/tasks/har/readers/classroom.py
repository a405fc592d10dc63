"""The classroom layout: folders of per-class CSV series, one series per file.

    root/{train,validation,test}/<class>/*.csv   (series directly in a split folder are unlabelled)
    root/<class>/*.csv                           (split by the last files of each class)

A series file has an index column, then one column per feature, one row per timestep.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from dltrain.core.console import progress_bar
from dltrain.core.errors import DataError
from dltrain.tasks.har.readers.tables import numeric_columns, read_table
from dltrain.tasks.har.splits import last_share_per_class
from dltrain.tasks.har.types import UNKNOWN_SUBJECT, UNLABELLED, HarOptions, HarSource, WindowSet, select_channels
from dltrain.tasks.har.windows import ShortRecordings, series_windows

CLASSROOM_SPLIT_FOLDERS = {"train": "train", "validation": "val", "valid": "val", "val": "val", "test": "test"}


class SeriesFile(NamedTuple):
    split: str
    class_name: str | None  # None: an unlabelled series
    path: Path


def detect(path: Path) -> bool:
    """Any folder; the registry asks the UCI HAR reader first."""
    return path.is_dir()


def read(root: Path, options: HarOptions) -> HarSource:
    listing = classroom_listing(root, options)
    if not listing:
        raise DataError(
            f"{root}: no CSV series found; expected train/ and validation/ folders of class folders (a01/*.csv ...), "
            "a folder of class folders, or a UCI HAR Dataset folder"
        )
    classes = sorted({entry.class_name for entry in listing if entry.class_name is not None})
    refusals = [] if classes else [f"{root}: found CSV series but no class folders to learn labels from"]
    channels, series = read_all_series(listing, options)
    window, step = series_window(listing, series, options)
    short = ShortRecordings(window)
    parts = []
    for entry, values in zip(listing, series):
        if step is not None and not short.fits(len(values), str(entry.path)):
            continue
        x, ids = series_windows(values, window, step, entry.path.relative_to(root).as_posix())
        label = UNLABELLED if entry.class_name is None else classes.index(entry.class_name)
        parts.append(WindowSet.of(x, np.full(len(x), label), UNKNOWN_SUBJECT, ids, entry.split))
    return HarSource.assemble(
        "classroom",
        root,
        channels,
        classes,
        parts,
        window,
        step,
        options.sample_rate_hz,
        notes={"series_files": len(listing)},
        short=short,
        ready_cut="CSV series used whole (no --window)" if step is None else None,
        training_refusals=refusals,
    )


def classroom_listing(root: Path, options: HarOptions) -> list[SeriesFile]:
    """Every series with its split and class; without split folders, the last files of each class
    (in name order) are validation and test."""
    split_folders = {name: root / name for name in CLASSROOM_SPLIT_FOLDERS if (root / name).is_dir()}
    listing: list[SeriesFile] = []
    if split_folders:
        for folder_name, folder in split_folders.items():
            split = CLASSROOM_SPLIT_FOLDERS[folder_name]
            for class_name, files in class_folders(folder).items():
                listing.extend(SeriesFile(split, class_name, path) for path in files)
            # An unlabelled test/ holds its series directly.
            listing.extend(SeriesFile("unlabelled", None, path) for path in csv_files(folder))
        return listing
    labelled = [(class_name, path) for class_name, files in class_folders(root).items() for path in files]
    classes = [class_name for class_name, _ in labelled]
    splits = last_share_per_class(classes, options.val_fraction, options.test_fraction)
    listing.extend(SeriesFile(split, class_name, path) for split, (class_name, path) in zip(splits, labelled))
    # Series lying directly in the root (e.g. the course's test/ folder itself) are unlabelled.
    listing.extend(SeriesFile("unlabelled", None, path) for path in csv_files(root))
    return listing


def csv_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.suffix.lower() == ".csv" and path.is_file())


def class_folders(folder: Path) -> dict[str, list[Path]]:
    return {child.name: csv_files(child) for child in sorted(folder.iterdir()) if child.is_dir() and csv_files(child)}


def read_all_series(listing: list[SeriesFile], options: HarOptions) -> tuple[list[str], list[np.ndarray]]:
    """(chosen channel names, each file's values); every file must have the first file's columns."""
    series: list[np.ndarray] = []
    columns: list[str] = []
    chosen: list[str] = []
    with progress_bar("reading CSV series", len(listing)) as advance:
        for entry in listing:
            frame = read_series_csv(entry.path)
            if not series:
                columns = [str(column) for column in frame.columns]
                indices = select_channels(columns, options.channels, columns, str(entry.path))
                chosen = [columns[index] for index in indices]
                if not chosen:
                    raise DataError(f"{entry.path}: no feature columns after the index column")
            elif [str(column) for column in frame.columns] != columns:
                raise DataError(f"{entry.path}: columns {list(frame.columns)} differ from the first series' {columns}")
            series.append(numeric_columns(frame, chosen, str(entry.path)))
            advance()
    return chosen, series


def series_window(listing: list[SeriesFile], series: list[np.ndarray], options: HarOptions) -> tuple[int, int | None]:
    """(window, step): the series' common length and no step, or --window and its step."""
    if options.window is not None:
        return options.window, options.resolved_step(options.window)
    lengths = [len(values) for values in series]
    if len(set(lengths)) > 1:
        shortest, longest = int(np.argmin(lengths)), int(np.argmax(lengths))
        raise DataError(
            f"CSV series of unequal length ({listing[shortest].path} has {lengths[shortest]} rows, "
            f"{listing[longest].path} has {lengths[longest]}); pass --window to cut them into equal windows"
        )
    return lengths[0], None


def read_series_csv(path: Path) -> pd.DataFrame:
    """One series: index column, then one column per feature. A file without a header row (every
    column name a number) is read again headerless, its features named by position."""
    frame = read_table(path, index_col=0)
    if len(frame.columns) and all(_is_number(str(column)) for column in frame.columns):
        frame = read_table(path, index_col=0, header=None)
        frame.columns = [f"feature_{position}" for position in range(len(frame.columns))]
    return frame


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
