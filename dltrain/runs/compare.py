"""`dltrain compare`: several runs side by side — the settings that differ, best validation values,
epochs, time and test scores — as a table, a CSV and one figure of overlaid learning curves."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dltrain.config.loading import flat_settings
from dltrain.core.errors import DataError, UsageError
from dltrain.core.files import write_text_atomic
from dltrain.core.outputs import OutputKind, check_output
from dltrain.reporting.tables import format_cell, short_metric_name
from dltrain.runs.rundir import HISTORY_FILE, Provenance, Run

COMPARISON_TABLE = "comparison.csv"
COMPARISON_FIGURE = "comparison.png"


@dataclass
class RunRecord:
    path: Path
    settings: dict[str, object]  # "section.key" -> value
    provenance: Provenance
    history: pd.DataFrame


def read_run_record(run_dir: Path) -> RunRecord:
    """A run, finished or not, as long as it has its config and at least one epoch of history."""
    run = Run.open(run_dir, finished=False)
    history = run.history()
    if history.empty:
        raise DataError(
            f"{run.path} is not a dltrain run with a history (no epoch finished: {HISTORY_FILE} missing or empty)"
        )
    return RunRecord(run.path, flat_settings(run.config.model_dump(mode="json")), run.provenance, history)


def differing_settings(records: list[RunRecord]) -> list[str]:
    keys = sorted({key for record in records for key in record.settings})
    return [key for key in keys if len({json.dumps(record.settings.get(key)) for record in records}) > 1]


def _best(history: pd.DataFrame, column: str, lowest: bool):
    if column not in history or history[column].dropna().empty:
        return None
    values = history[column].dropna()
    return float(values.min() if lowest else values.max())


def comparison_frame(records: list[RunRecord]) -> pd.DataFrame:
    differing = differing_settings(records)
    rows = []
    for record in records:
        provenance, history = record.provenance, record.history
        row = {"run": record.path.name, "status": provenance.status}
        row.update({key: record.settings.get(key) for key in differing})
        row["best val_loss"] = _best(history, "val_loss", lowest=True)
        for column in ("val_accuracy", "val_kappa"):
            if any(column in other.history for other in records):
                row[f"best {column}"] = _best(history, column, lowest=False)
        row["best epoch"] = provenance.best_epoch
        row["epochs"] = len(history)
        row["seconds"] = provenance.train_seconds
        for split, values in provenance.metrics.items():
            for name in ("accuracy", "quadratic_weighted_kappa"):
                if name in values:
                    row[f"{split} {short_metric_name(name)}"] = values[name]
        rows.append(row)
    return pd.DataFrame(rows)


def run_labels(records: list[RunRecord]) -> list[str]:
    """Legend labels: the differing settings when they are few, else the folder names."""
    differing = differing_settings(records)
    if not differing or len(differing) > 3:
        return [record.path.name for record in records]
    labels = [", ".join(f"{key}={record.settings.get(key)}" for key in differing) for record in records]
    return labels if len(set(labels)) == len(labels) else [record.path.name for record in records]


COMPARISON_FOLDER = OutputKind("comparison folder", True, (COMPARISON_TABLE,))


def compare_runs(run_dirs: list[Path], out: Path | None = None, force: bool = False) -> pd.DataFrame:
    """The comparison of the runs; with `out`, also written there (comparison.csv and .png)."""
    if not run_dirs:
        raise UsageError("give at least one RUN_DIR to compare")
    if out is not None:
        check_output(out, COMPARISON_FOLDER, force, inputs=run_dirs)
    records = [read_run_record(path) for path in run_dirs]
    if out is not None:
        write_comparison(records, Path(out))
    return comparison_frame(records)


def write_comparison(records: list[RunRecord], out: Path) -> pd.DataFrame:
    from dltrain.reporting.figures import plot_run_comparison

    frame = comparison_frame(records)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / COMPARISON_TABLE, frame.to_csv(index=False))
    plot_run_comparison(dict(zip(run_labels(records), (record.history for record in records))), out / COMPARISON_FIGURE)
    return frame


def comparison_table(frame: pd.DataFrame):
    from rich.table import Table
    from rich.text import Text

    table = Table(title="runs compared")
    for column in frame.columns:
        table.add_column(
            column, justify="left" if column in ("run", "status") or frame[column].dtype == object else "right"
        )
    for _, row in frame.iterrows():
        table.add_row(*(Text(format_cell(value)) for value in row))  # Text: values are not markup
    return table
