"""`dltrain evaluate`: the assignment's metrics on a split, as a table, JSON and figures."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dltrain.data.datadir import read_meta, write_json_atomic
from dltrain.core.errors import DataError
from dltrain.runs.rundir import HISTORY_FILE, open_run

logger = logging.getLogger("dltrain")


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    # Passing `labels` keeps every class in the scores even when a split lacks some of them.
    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "classes": list(classes),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(classes, precision, recall, f1, support)
        },
        "count": int(len(y_true)),
    }


def check_compatible(run_meta: dict, data_meta: dict, data_dir: Path) -> None:
    """A DATA_DIR other than the training one must share task, classes, channels and shape."""
    for key in ("task", "classes", "channels", "input_shape", "image_options"):
        if run_meta.get(key) != data_meta.get(key):
            raise DataError(f"{data_dir} does not match the run's data: {key} {data_meta.get(key)} vs {run_meta.get(key)}")


def evaluate_and_report(model, data_dir: Path, split_name: str, meta: dict, run_dir: Path, thresholds=None,
                        head: str = "classification", tta: bool = False) -> dict:
    """Score one split, write metrics-<split>.json and the figures into the run, return the metrics."""
    from dltrain.training.feeds import predict_outputs, scoring_inputs
    from dltrain.reporting.figures import plot_confusion_matrix, plot_learning_curves

    inputs, truth, _ids = scoring_inputs(data_dir, meta, split_name)
    if (truth < 0).any():
        raise DataError(f"{data_dir}: the {split_name} split is unlabelled; use 'dltrain predict' for it")
    outputs = predict_outputs(model, inputs, tta=tta)
    classes = meta["classes"]
    if meta["task"] == "retina":
        from dltrain.tasks.grading import DEFAULT_THRESHOLDS, grades_from_outputs, quadratic_kappa

        predicted = grades_from_outputs(outputs, head, thresholds or DEFAULT_THRESHOLDS)
        metrics = compute_metrics(truth, predicted, classes)
        metrics["quadratic_weighted_kappa"] = quadratic_kappa(truth, predicted)
        metrics["tta"] = tta
    else:
        metrics = compute_metrics(truth, outputs.argmax(axis=1), classes)
    metrics.update(split=split_name, data_dir=str(Path(data_dir).resolve()))
    write_json_atomic(run_dir / f"metrics-{split_name}.json", metrics)
    title = f"{split_name}: accuracy {metrics['accuracy']:.4f}"
    if "quadratic_weighted_kappa" in metrics:
        title += f", kappa {metrics['quadratic_weighted_kappa']:.4f}"
    plot_confusion_matrix(metrics["confusion_matrix"], classes, title, run_dir / f"confusion-matrix-{split_name}.png")
    plot_learning_curves(run_dir / HISTORY_FILE, run_dir / "learning-curves.png")
    return metrics


def evaluate_run(run_dir: Path, data_dir: Path | None, split_name: str, tta: bool = False) -> dict:
    run = open_run(run_dir)
    data_dir = Path(data_dir) if data_dir else run.data_dir
    data_meta = read_meta(data_dir)
    check_compatible(run.data_meta, data_meta, data_dir)
    if not data_meta.get("splits", {}).get(split_name):
        raise DataError(f"{data_dir} has no {split_name} split (splits: {', '.join(data_meta.get('splits', {}))})")
    model = run.load_model()
    return evaluate_and_report(model, data_dir, split_name, run.data_meta, run.path, run.provenance.get("thresholds"), run.config.model.head, tta)


def metrics_table(metrics: dict):
    from rich.table import Table

    kappa = f", quadratic weighted kappa {metrics['quadratic_weighted_kappa']:.4f}" if "quadratic_weighted_kappa" in metrics else ""
    table = Table(title=f"{metrics['split']}: accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f}{kappa} ({metrics['count']} samples)")
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, scores in metrics["per_class"].items():
        table.add_row(name, f"{scores['precision']:.3f}", f"{scores['recall']:.3f}", f"{scores['f1']:.3f}", str(scores["support"]))
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
