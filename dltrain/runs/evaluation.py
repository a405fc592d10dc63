"""Scoring a run's model on one split of a DATA_DIR: the task's metrics, written into the run as
metrics-<split>.json with the confusion matrix and learning curves beside it. Used by `train`
(the kept model, at the end) and by `evaluate` (`evaluate_run`)."""

from __future__ import annotations

import logging
from pathlib import Path

from dltrain.core.errors import DataError, failures_explained
from dltrain.data.datadir import DataDir
from dltrain.runs.metrics import write_split_metrics
from dltrain.runs.rundir import Run
from dltrain.tasks import task_of
from dltrain.tasks.base import ScoredSplit, check_tta, resolve_tta

logger = logging.getLogger("dltrain")


def score_split(model, data: DataDir, split: str, run: Run, tta: str = "none") -> dict:
    """Score one labelled split, write metrics-<split>.json and the figures into the run, return the metrics."""
    from dltrain.reporting.figures import plot_confusion_matrix, plot_learning_curves

    task = task_of(run.data_meta)
    check_tta(task, tta)
    history = run.history()  # a damaged history.csv is refused before anything is written
    scoring = task.scoring_inputs(data, split)
    with failures_explained():
        outputs = task.predict_outputs(model, scoring.inputs, tta=tta)
    predicted = task.labels_from_outputs(outputs, run, tta)
    metrics = task.metrics(scoring.labels, predicted, run.data_meta.classes)
    metrics.update(task.run_metrics(run, scoring, outputs, tta))
    metrics.update(split=split, data_dir=str(data.path.resolve()), tta=tta)
    if split == "val":
        metrics["steered_by_this_split"] = validation_uses(run)  # these scores are not held out
    name = run.path.resolve().name
    plot_confusion_matrix(metrics, run.path / f"confusion-matrix-{split}.png", name)
    figures = [f"confusion-matrix-{split}.png"]
    if plot_learning_curves(history, run.path / "learning-curves.png", curves_title(run), run.provenance.best_epoch):
        figures.append("learning-curves.png")
    figures += task_figures(task, model, run, data, ScoredSplit(split, scoring, outputs, predicted, tta), name)
    metrics["figures"] = figures
    write_split_metrics(run.path, metrics)  # last: its list of figures names files that exist
    return metrics


def task_figures(task, model, run: Run, data: DataDir, scored: ScoredSplit, name: str) -> list[str]:
    """The task's own figures of the split; one that cannot be drawn (memory for Grad-CAM at 512 px, a
    photograph gone) is a warning, never the end of a training run or of its metrics."""
    try:
        return task.split_figures(model, run, data, scored, name)
    except Exception as error:  # noqa: BLE001 - figures are a view of the scores, which stand without them
        logger.warning("the %s split's %s figures were not drawn: %s", scored.name, task.name, error)
        return []


def validation_uses(run: Run) -> list[str]:
    """What the validation split decided in this run, so that its scores there are not read as held out."""
    stopping, uses = run.config.early_stopping, []
    if "val" in run.provenance.fitted_on:
        uses.append("the weights (the run trained on it)")
    if stopping.restore_best:
        uses.append(f"the kept epoch (best {stopping.monitor})")
    if stopping.patience > 0:
        uses.append(f"when training stopped (no {stopping.monitor} progress for {stopping.patience} epochs)")
    if run.config.schedule.name == "plateau":
        uses.append(f"the learning-rate cuts (plateau of {stopping.monitor})")
    return uses + task_of(run.data_meta).validation_uses(run)


def headline(metrics: dict, names: tuple[str, ...]) -> dict[str, float]:
    return {name: metrics[name] for name in names if metrics.get(name) is not None}


def curves_title(run: Run) -> str:
    """`run-name: preset har-gru, kept epoch 12 of 20`."""
    source = run.provenance.config_source
    preset = f"preset {source}" if source and not source.endswith((".yaml", ".yml")) else f"config {source or '?'}"
    kept = run.provenance.best_epoch
    epochs = run.provenance.epochs_run
    kept_text = f", kept epoch {kept}" + (f" of {epochs}" if epochs else "") if kept else ""
    return f"{run.path.resolve().name}: {preset}{kept_text}"


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
