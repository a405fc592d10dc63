"""`dltrain compare`: several runs side by side — the settings that differ, best validation values,
epochs, time and test scores — as a table, a CSV and one figure of overlaid learning curves."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from dltrain.data.datadir import refuse_file_as_folder, write_text_atomic
from dltrain.core.errors import DataError, UsageError
from dltrain.runs.rundir import CONFIG_FILE, HISTORY_FILE, PROVENANCE_FILE

COMPARISON_TABLE = "comparison.csv"
COMPARISON_FIGURE = "comparison.png"


@dataclass
class RunRecord:
    path: Path
    settings: dict[str, object]  # "section.key" -> value
    provenance: dict
    history: pd.DataFrame


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def read_run_record(run_dir: Path) -> RunRecord:
    """A run, finished or not, as long as it has its config and at least one epoch of history."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run folder")
    missing = [name for name in (CONFIG_FILE, PROVENANCE_FILE, HISTORY_FILE) if not (run_dir / name).is_file()]
    if missing:
        raise DataError(f"{run_dir} is not a dltrain run with a history (missing {', '.join(missing)})")
    try:
        settings = _flatten(yaml.safe_load((run_dir / CONFIG_FILE).read_text()) or {})
        provenance = json.loads((run_dir / PROVENANCE_FILE).read_text())
        history = pd.read_csv(run_dir / HISTORY_FILE)
    except Exception as error:  # YAML, JSON and CSV parsers raise their own types
        raise DataError(f"{run_dir}: damaged run files ({type(error).__name__})") from None
    return RunRecord(run_dir, settings, provenance, history)


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
        row = {"run": record.path.name, "status": provenance.get("status", "?")}
        row.update({key: record.settings.get(key) for key in differing})
        row["best val_loss"] = _best(history, "val_loss", lowest=True)
        for column in ("val_accuracy", "val_kappa"):
            if any(column in other.history for other in records):
                row[f"best {column}"] = _best(history, column, lowest=False)
        row["best epoch"] = provenance.get("best_epoch")
        row["epochs"] = len(history)
        row["seconds"] = provenance.get("train_seconds")
        for split, values in (provenance.get("metrics") or {}).items():
            for name in ("accuracy", "quadratic_weighted_kappa"):
                if name in values:
                    row[f"{split} {name.replace('quadratic_weighted_kappa', 'kappa')}"] = values[name]
        rows.append(row)
    return pd.DataFrame(rows)


def run_labels(records: list[RunRecord]) -> list[str]:
    """Legend labels: the differing settings when they are few, else the folder names."""
    differing = differing_settings(records)
    if not differing or len(differing) > 3:
        return [record.path.name for record in records]
    labels = [", ".join(f"{key}={record.settings.get(key)}" for key in differing) for record in records]
    return labels if len(set(labels)) == len(labels) else [record.path.name for record in records]


def compare_runs(run_dirs: list[Path], out: Path | None = None) -> pd.DataFrame:
    if not run_dirs:
        raise UsageError("give at least one RUN_DIR to compare")
    records = [read_run_record(path) for path in run_dirs]
    frame = comparison_frame(records)
    if out is not None:
        from dltrain.reporting.figures import plot_run_comparison

        out = Path(out)
        refuse_file_as_folder(out)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / COMPARISON_TABLE, frame.to_csv(index=False))
        plot_run_comparison(dict(zip(run_labels(records), (record.history for record in records))), out / COMPARISON_FIGURE)
    return frame


def comparison_table(frame: pd.DataFrame):
    from rich.table import Table
    from rich.text import Text

    table = Table(title="runs compared")
    for column in frame.columns:
        table.add_column(column, justify="left" if column in ("run", "status") or frame[column].dtype == object else "right")
    for _, row in frame.iterrows():
        table.add_row(*(Text(_cell(value)) for value in row))  # Text: values are not markup
    return table


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)
