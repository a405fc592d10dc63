"""What `train` says when a run is complete: which epoch it kept and why, its validation scores
labelled as what they are (they chose the epoch), where the figures are, and the command to run next."""

from __future__ import annotations

from dltrain.reporting.tables import short_metric_name
from dltrain.runs.evaluation import validation_uses
from dltrain.runs.rundir import Run


def kept_epoch_line(run: Run) -> str:
    provenance, config = run.provenance, run.config
    if provenance.ensemble_of:
        averaged = "outputs" if config.model.head == "regression" else "class probabilities"
        return f"an ensemble of {len(provenance.ensemble_of)} runs: the mean of their {averaged}"
    stopping = config.early_stopping
    why = (
        f"the best {stopping.monitor} on the validation split"
        if stopping.restore_best
        else "the last one (early_stopping.restore_best is off)"
    )
    ended = ""
    if provenance.diverged_at:
        ended = f"; training diverged in epoch {provenance.diverged_at.get('epoch')} and stopped"
    elif provenance.epochs_run is not None and provenance.epochs_run < config.train.epochs:
        ended = (
            f"; early stopping ended it after {provenance.epochs_run} of {config.train.epochs} epochs "
            f"({stopping.patience} without {stopping.monitor} progress)"
        )
    return f"kept epoch {provenance.best_epoch} of {provenance.epochs_run}: {why}{ended}"


def validation_line(run: Run, validation: str) -> str:
    uses = validation_uses(run)
    if "val" in run.provenance.fitted_on:
        return f"validation {validation} (in-sample: the run trained on the val split)"
    if not uses:
        return f"validation {validation} (it steered nothing in this run)"
    return f"validation {validation} (not held out: it chose {', '.join(uses)})"


def figure_names(run: Run) -> list[str]:
    """The figures of the validation split's scoring (as metrics-val.json lists them)."""
    from dltrain.runs.metrics import read_split_metrics

    metrics = read_split_metrics(run.path, "val")
    return metrics.figures if metrics is not None and metrics.figures else ["learning-curves.png"]


def completion_lines(run: Run) -> list[str]:
    """The lines `train` ends with."""
    scores = run.provenance.metrics.get("val", {})
    validation = ", ".join(f"{short_metric_name(name)} {value:.4f}" for name, value in scores.items())
    path = run.path
    lines = [
        kept_epoch_line(run),
        validation_line(run, validation),
        f"figures: {', '.join(str(path / name) for name in figure_names(run))}",
    ]
    if run.data_meta.split_size("test"):
        lines.append(f"next: dltrain evaluate {path} --split test   (held out)")
    else:
        lines.append(f"next: dltrain predict {path} INPUT --out predictions.csv")
    return lines
