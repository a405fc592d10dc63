"""`dltrain runs`: the run folders under a folder (models/ by default) as one table: name, task,
config, status, the kept model's validation metric, the test metric if scored, and the date.

A folder holding config.yaml or provenance.json is read with `Run.open` (finished or not); one
that cannot be read, and a folder holding no run at all, is skipped and counted, never guessed at.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dltrain.core.errors import DataError, DltrainError
from dltrain.runs.metrics import read_split_metrics
from dltrain.runs.rundir import CONFIG_FILE, PROVENANCE_FILE, TENSORBOARD_FOLDER, Run, is_run_folder

logger = logging.getLogger("dltrain")
MAX_DEPTH = 4  # models/lab/<experiment>/runs/<cell>
METRICS = ("quadratic_weighted_kappa", "accuracy")  # the one shown per split: kappa where there is one
CELL_NAMES = {"quadratic_weighted_kappa": "kappa", "accuracy": "acc"}


@dataclass
class RunRow:
    name: str  # the folder, relative to the folder listed
    task: str | None
    config: str | None  # the preset's name, or the config file's
    status: str
    validation: tuple[str, float] | None  # (metric, value) of the kept model, or the best epoch's so far
    test: tuple[str, float] | None  # from metrics-test.json
    date: datetime  # when provenance.json was last written

    def as_dict(self) -> dict:
        metric = lambda pair: {"metric": pair[0], "value": pair[1]} if pair else None  # noqa: E731
        return {
            "name": self.name,
            "task": self.task,
            "config": self.config,
            "status": self.status,
            "validation": metric(self.validation),
            "test": metric(self.test),
            "date": self.date.isoformat(timespec="seconds"),
        }


@dataclass
class RunListing:
    rows: list[RunRow] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # folders that are not runs, and why


def headline_metric(values: dict) -> tuple[str, float] | None:
    name = next((name for name in METRICS if isinstance(values.get(name), (int, float))), None)
    return (name, float(values[name])) if name else None


def best_so_far(run: Run) -> tuple[str, float] | None:
    """An unfinished run's best validation value per epoch (history.csv)."""
    try:
        history = run.history()
    except DataError:
        return None
    for name, column in (("quadratic_weighted_kappa", "val_kappa"), ("accuracy", "val_accuracy")):
        if column in history and history[column].notna().any():
            return name, float(history[column].max())
    return None


def test_metric(path: Path) -> tuple[str, float] | None:
    try:
        metrics = read_split_metrics(path, "test")
    except DataError:
        return None  # the listing goes on; compare and evaluate name the damage
    return headline_metric(metrics.model_dump()) if metrics else None


def run_row(path: Path, root: Path) -> RunRow:
    run = Run.open(path, finished=False)
    provenance = run.provenance
    validation = headline_metric(provenance.metrics.get("val", {})) or best_so_far(run)
    source = provenance.config_source
    stamp = (path / PROVENANCE_FILE) if (path / PROVENANCE_FILE).is_file() else path / CONFIG_FILE
    return RunRow(
        name=str(path.relative_to(root)) if path != root else path.name,
        task=provenance.data.meta.task if provenance.data else None,
        config=Path(source).name if source and source.endswith((".yaml", ".yml")) else source,
        status=provenance.status,
        validation=validation,
        test=test_metric(path),
        date=datetime.fromtimestamp(stamp.stat().st_mtime),
    )


def visit(path: Path, root: Path, depth: int, listing: RunListing) -> int:
    """Rows for the runs at and under `path`; returns how many were found."""
    if is_run_folder(path):
        try:
            listing.rows.append(run_row(path, root))
            return 1
        except DltrainError as error:
            listing.skipped.append((path, str(error)))
            return 0
    found = 0
    children = sorted(child for child in path.iterdir() if child.is_dir() and not child.name.startswith("."))
    for child in children if depth > 0 else []:
        if child.name == TENSORBOARD_FOLDER:
            continue
        skipped_before = len(listing.skipped)
        inside = visit(child, root, depth - 1, listing)
        if not inside and len(listing.skipped) == skipped_before:
            listing.skipped.append((child, "holds no dltrain run"))
        found += inside
    return found


def find_runs(folder: Path) -> RunListing:
    """Every run at or under `folder` (down to MAX_DEPTH levels), newest first."""
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"{folder}: no such folder (runs go to models/ unless train --out says otherwise)")
    if not folder.is_dir():
        raise DataError(f"{folder} is a file, not a folder of runs")
    listing = RunListing()
    visit(folder, folder, MAX_DEPTH, listing)
    listing.rows.sort(key=lambda row: row.date, reverse=True)
    for path, reason in listing.skipped:
        logger.debug("skipped %s: %s", path, reason)
    return listing


def metric_cell(pair: tuple[str, float] | None) -> str:
    return f"{CELL_NAMES[pair[0]]} {pair[1]:.3f}" if pair else "-"


def row_cells(row: RunRow) -> list[str]:
    return [
        row.name,
        row.task or "-",
        row.config or "-",
        row.status,
        metric_cell(row.validation),
        metric_cell(row.test),
        row.date.strftime("%Y-%m-%d"),
    ]


HEADERS = ["run", "task", "config", "status", "validation", "test", "date"]


def runs_table(listing: RunListing, width: int = 80):
    """A Rich table `width` columns wide at most: every column but the run's and the config's keeps its
    cells on one line; those two share the rest, and a name longer than its column wraps, never cut."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    cells = [row_cells(row) for row in listing.rows]
    longest = [max(len(line[index]) for line in [HEADERS, *cells]) for index in range(len(HEADERS))]
    spare = width - sum(longest[index] for index in (1, 3, 4, 5, 6)) - (len(HEADERS) - 1)  # 1-space gaps
    config_width = min(longest[2], max(10, spare // 3))
    run_width = max(8, min(longest[0], spare - config_width))
    widths = [run_width, longest[1], config_width, *longest[3:]]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=0)  # the box: 1-space gaps
    for header, column_width in zip(HEADERS, widths):
        table.add_column(
            header, width=column_width, overflow="fold", justify="right" if header in ("validation", "test") else "left"
        )
    for line in cells:
        table.add_row(*(Text(cell) for cell in line))  # Text: names are not markup
    return table


def runs_text(listing: RunListing) -> str:
    """Plain aligned columns, for pipes and files."""
    lines = [HEADERS, *(row_cells(row) for row in listing.rows)]
    widths = [max(len(line[index]) for line in lines) for index in range(len(HEADERS))]
    return "".join(
        "  ".join(
            cell.rjust(width) if index in (4, 5) else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(line, widths))
        ).rstrip()
        + "\n"
        for line in lines
    )
