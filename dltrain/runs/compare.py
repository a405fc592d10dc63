"""`dltrain compare`: several runs side by side — the settings that differ, best validation values,
epochs, time and test scores — as a table, a CSV and one figure of overlaid learning curves."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dltrain.config.loading import flat_settings
from dltrain.core.errors import DataError, UsageError
from dltrain.core.files import write_text_atomic
from dltrain.core.outputs import OutputKind, check_output
from dltrain.reporting.tables import format_cell, short_metric_name
from dltrain.runs.metrics import read_split_metrics
from dltrain.runs.provenance import Provenance
from dltrain.runs.rundir import HISTORY_FILE, Run

logger = logging.getLogger("dltrain")

COMPARISON_TABLE = "comparison.csv"
COMPARISON_FIGURE = "comparison.png"


@dataclass
class RunRecord:
    path: Path
    settings: dict[str, object]  # "section.key" -> value
    provenance: Provenance
    history: pd.DataFrame
    test: dict[str, float]  # the headline test scores, once `evaluate --split test` has written them


HEADLINE = ("accuracy", "quadratic_weighted_kappa", "referable_auc")  # each where the runs' task reports it
VALIDATION_NOTE = (
    "* validation: it chose each run's kept epoch (and thresholds), so it is not a held-out score (blank for a "
    "run trained on train and val, a refit); test columns come from 'dltrain evaluate RUN_DIR --split test' "
    "and never order the runs"
)


def read_run_record(run_dir: Path) -> RunRecord:
    """A run, finished or not, as long as it has its config and at least one epoch of history (an
    ensemble, which trained no epoch of its own, complete)."""
    run = Run.open(run_dir, finished=False)
    history = run.history()
    if run.provenance.ensemble_of:
        run.check_finished()
    elif history.empty:
        raise DataError(
            f"{run.path} is not a dltrain run with a history (no epoch finished: {HISTORY_FILE} missing or empty)"
        )
    return RunRecord(
        run.path, flat_settings(run.config.model_dump(mode="json")), run.provenance, history, read_test_scores(run.path)
    )


def read_test_scores(run_dir: Path) -> dict[str, float]:
    metrics = read_split_metrics(run_dir, "test")
    values = metrics.model_dump() if metrics else {}
    return {name: float(values[name]) for name in HEADLINE if values.get(name) is not None}


def differing_settings(records: list[RunRecord]) -> list[str]:
    keys = sorted({key for record in records for key in record.settings})
    return [key for key in keys if len({json.dumps(record.settings.get(key)) for record in records}) > 1]


def _best(history: pd.DataFrame, column: str, lowest: bool):
    if column not in history or history[column].dropna().empty:
        return None
    values = history[column].dropna()
    return float(values.min() if lowest else values.max())


def _validation_scores(record: RunRecord) -> dict[str, float | None]:
    """The kept model's validation scores (a finished run's, thresholds tuned), else the history's best;
    blank for a run trained on the validation split too (a refit), whose scores there are in-sample."""
    scored = record.provenance.metrics.get("val", {})
    scores = {"val loss*": _best(record.history, "val_loss", lowest=True)}
    for name, column in (
        ("accuracy", "val_accuracy"),
        ("quadratic_weighted_kappa", "val_kappa"),
        ("referable_auc", None),  # no history column: scored after training only
    ):
        value = scored.get(name)
        if value is None and column:
            value = _best(record.history, column, lowest=False)
        if value is not None:
            scores[f"val {short_metric_name(name)}*"] = value
    if "val" in record.provenance.fitted_on:  # the same columns, in the same place, left blank
        return dict.fromkeys(scores)
    return scores


def comparison_frame(records: list[RunRecord]) -> pd.DataFrame:
    """One row per run, in the order given: the settings that differ, then validation (starred: it
    steered the runs), then the training's length, then the held-out test scores where evaluated."""
    differing = differing_settings(records)
    rows = []
    for record in records:
        provenance = record.provenance
        row = {"run": record.path.name, "status": provenance.status}
        row.update({key: record.settings.get(key) for key in differing})
        row.update(_validation_scores(record))
        row.update({"kept epoch": provenance.best_epoch, "epochs": len(record.history)})
        row["seconds"] = provenance.train_seconds
        row.update({f"test {short_metric_name(name)}": value for name, value in record.test.items()})
        rows.append(row)
    frame = pd.DataFrame(rows)
    tests = [column for column in frame.columns if column.startswith("test ")]
    return frame[[column for column in frame.columns if column not in tests] + tests]


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


def fold_comparison_frame(records: dict[str, list[RunRecord]], folds: int | None = None) -> pd.DataFrame:
    """One row per grid point: its differing settings, and each headline validation score's mean,
    standard deviation and per-fold values. A mean is given only for a point scored on all `folds` folds:
    one missing the hardest fold would otherwise look best. Points keep the grid's order."""
    firsts = [runs[0] for runs in records.values()]
    differing = differing_settings(firsts)
    rows = []
    for point, runs in records.items():
        expected = folds or len(runs)
        row = {"point": point, "folds": len(runs)}
        row.update({key: runs[0].settings.get(key) for key in differing})
        for name in HEADLINE:
            values = [run.provenance.metrics.get("val", {}).get(name) for run in runs]
            values = [value for value in values if value is not None]
            if values:
                label = f"val {short_metric_name(name)}"
                complete = len(values) == expected
                row[f"{label} mean*"] = float(np.mean(values)) if complete else None
                row[f"{label} std"] = float(np.std(values, ddof=1)) if complete and len(values) > 1 else None
                row[f"{label} per fold"] = [round(float(value), 4) for value in values]
                row["status"] = "complete" if complete else f"incomplete: {len(values)} of {expected} folds scored"
        row.setdefault("status", f"incomplete: 0 of {expected} folds scored")
        row["epochs (mean)"] = round(float(np.mean([len(run.history) for run in runs])), 1)
        kept = [run.provenance.best_epoch for run in runs if run.provenance.best_epoch is not None]
        # What `dltrain refit --epochs` takes for the final model on train and val together.
        row["kept epoch (median)"] = int(np.median(kept).round()) if kept else None
        rows.append(row)
    return pd.DataFrame(rows)


def write_fold_comparison(records: dict[str, list[RunRecord]], out: Path, folds: int | None = None) -> pd.DataFrame:
    from dltrain.reporting.figures import plot_fold_comparison

    frame = fold_comparison_frame(records, folds)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / COMPARISON_TABLE, frame.to_csv(index=False))
    metric = next((short for name in HEADLINE if f"val {(short := short_metric_name(name))} mean*" in frame), None)
    scored = frame[frame[f"val {metric} mean*"].notna()] if metric else frame.iloc[0:0]
    if scored.empty:
        logger.warning("no grid point was scored on every fold: %s has no figure", out / COMPARISON_FIGURE)
        return frame
    renamed = scored.rename(columns=lambda column: column.removeprefix("val ").replace(" mean*", " mean"))
    plot_fold_comparison(renamed, metric, out / COMPARISON_FIGURE)
    return frame


FOLDS_NOTE = (
    "* validation scores over subject-grouped folds of the train and val data: each fold's validation subjects also "
    "chose its kept epoch, the same way for every point; the test split played no part. The kept epoch's median "
    "is what 'dltrain refit RUN_DIR --epochs N' trains a final model on train and val for"
)


def comparison_table(frame: pd.DataFrame, width: int | None = None, note: str = VALIDATION_NOTE):
    """The comparison as a Rich table; runs as columns instead when that is what fits in `width`
    (run names and settings are never cut)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="runs compared", caption=note, caption_justify="left")
    for column in frame.columns:
        numeric = column not in ("run", "point", "status") and frame[column].dtype != object
        table.add_column(column, justify="right" if numeric else "left", no_wrap=not numeric)
    for _, row in frame.iterrows():
        table.add_row(*(Text(format_cell(value)) for value in row))  # Text: values are not markup
    if width is None or Console(width=10_000).measure(table).maximum <= width or len(frame) > len(frame.columns):
        return table
    transposed = Table(title="runs compared", caption=note, caption_justify="left", show_header=True)
    transposed.add_column("", overflow="fold")  # long names fold onto a second line, never cut
    for name in frame[frame.columns[0]]:
        transposed.add_column(Text(str(name)), justify="right", overflow="fold")
    for column in frame.columns[1:]:
        transposed.add_row(column, *(Text(format_cell(value)) for value in frame[column]))
    return transposed
