"""Reading CSV tables for the CSV source layouts: one DataError line for an unreadable file, numeric
columns with the first bad cell named, the columns a long CSV's options pick, and time stamps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dltrain.core.errors import DataError
from dltrain.tasks.har.types import check_finite


def read_table(path: Path, **kwargs) -> pd.DataFrame:
    """pandas.read_csv with its failures turned into one line naming the file."""
    try:
        return pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise DataError(f"{path}: not a readable CSV ({str(error).splitlines()[0]})") from None


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


def is_mostly_numeric(series: pd.Series) -> bool:
    """Whether a column holds numbers, or text whose first hundred filled cells all read as numbers
    (a channel, not a label)."""
    if pd.api.types.is_numeric_dtype(series):
        return True
    sample = series.dropna().astype(str).str.strip().str.rstrip(";").head(100)
    return len(sample) > 0 and pd.to_numeric(sample, errors="coerce").notna().all()


def pick_column(
    frame: pd.DataFrame, requested: str | None, candidates: tuple[str, ...], option: str, path: Path, required: bool
) -> str | None:
    """The column named by an option, else the first of the usual names present (any case)."""
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
        raise DataError(f"{path}: {missing_column_text(candidates, option, columns)}")
    return None


def missing_column_text(candidates: tuple[str, ...], option: str, columns: list[str]) -> str:
    return f"no {'/'.join(candidates)} column; name it with {option} (columns: {', '.join(columns)})"


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
    raise DataError(
        f"{path}: column {column!r} row {row + 1}: {series.iloc[row]!r} is neither a number nor a date-time"
    )
