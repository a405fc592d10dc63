"""`dltrain evaluate`: the assignment's metrics of a finished run on one split, as a table, JSON and figures."""

from __future__ import annotations

import logging
from pathlib import Path

from dltrain.core.errors import DataError
from dltrain.data.datadir import DataDir
from dltrain.runs.rundir import Run
from dltrain.runs.scoring import score_split
from dltrain.tasks import task_of
from dltrain.tasks.base import resolve_tta

logger = logging.getLogger("dltrain")


def evaluate_run(run_dir: Path, data_dir: Path | None, split: str, tta: str | None = None) -> dict:
    """The split's metrics; `tta` None: the task's default for the run (retina: its blend's mode)."""
    run = Run.open(run_dir)
    tta = resolve_tta(task_of(run.data_meta), run, tta)
    data = DataDir.open(Path(data_dir) if data_dir else run.data_dir)
    run.data_meta.check_compatible(data.meta, str(data.path))
    if not data.has_split(split):
        raise DataError(f"{data.path} has no {split} split (splits: {', '.join(data.available_splits())})")
    whose = "the run's own DATA_DIR" if data_dir is None else "a prepared DATA_DIR"
    logger.info("scoring %s on the %s split of %s, %s", run.path, split, whose, data.path)
    return score_split(run.load_model(), data, split, run, tta)


def metrics_table(metrics: dict):
    from rich.table import Table

    kappa = "".join(
        f", {label} {metrics[key]:.4f}"
        for key, label in (
            ("quadratic_weighted_kappa", "quadratic weighted kappa"),
            ("blended_quadratic_weighted_kappa", "both eyes blended"),
        )
        if key in metrics
    )
    table = Table(
        title=f"{metrics['split']}: accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f}{kappa} "
        f"({metrics['count']} samples)"
    )
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, scores in metrics["per_class"].items():
        table.add_row(
            name, f"{scores['precision']:.3f}", f"{scores['recall']:.3f}", f"{scores['f1']:.3f}", str(scores["support"])
        )
    return table


def confusion_table(metrics: dict):
    from rich.table import Table

    table = Table(title="confusion matrix (rows: true, columns: predicted)")
    table.add_column("")
    for index, _ in enumerate(metrics["classes"]):
        table.add_column(str(index), justify="right")
    for index, (name, row) in enumerate(zip(metrics["classes"], metrics["confusion_matrix"])):
        table.add_row(f"{index} {name}", *(str(value) for value in row))
    return table
