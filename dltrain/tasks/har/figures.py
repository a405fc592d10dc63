"""What an activity run's model sees: the timelines `evaluate` writes for a scored split (per subject,
the true and predicted activity with the model's confidence) and `dltrain explain`'s saliency figure
of each window."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dltrain.core.files import safe_file_names
from dltrain.tasks.base import ExplainRequest, ScoredSplit

logger = logging.getLogger("dltrain")
MAX_TIMELINES = 40  # subjects drawn per split; a larger split's first ones


def timelines(run, scored: ScoredSplit, title: str) -> list[str]:
    """`timeline-<split>-subject-<s>.png` per subject of the split (`timeline-<split>.png` where the
    subjects are unknown), its windows in the split's order: the order they were cut from each recording."""
    from dltrain.reporting.timelines import plot_timeline

    for stale in run.path.glob(f"timeline-{scored.name}*.png"):  # an earlier scoring's, of other subjects
        stale.unlink()
    labels, outputs = scored.scoring.labels, np.asarray(scored.outputs)
    groups = scored.scoring.groups if scored.scoring.groups is not None else np.full(len(labels), -1)
    subjects = list(dict.fromkeys(groups.tolist()))
    if len(subjects) > MAX_TIMELINES:
        logger.info("timelines of the first %d of the %d subjects of %s", MAX_TIMELINES, len(subjects), scored.name)
    names = []
    for subject in subjects[:MAX_TIMELINES]:
        rows = groups == subject
        known = subject >= 0
        name = f"timeline-{scored.name}-subject-{subject}.png" if known else f"timeline-{scored.name}.png"
        who = f"subject {subject}" if known else "every window"
        plot_timeline(
            labels[rows],
            scored.predicted[rows],
            outputs[rows].max(axis=1),
            run.data_meta.classes,
            f"{title}: {scored.name} split, {who}",
            run.path / name,
        )
        names.append(name)
    return names


def explain_windows(run, model, request: ExplainRequest, out: Path, read_source) -> list[dict]:
    """One figure per window: its channels, and under them the saliency of each reading.
    `read_source(source, run_meta)` -> (windows, ids) cuts a SOURCE as the run's data was cut."""
    from dltrain.networks.attribution import input_saliency
    from dltrain.reporting.explanations import plot_window_saliency

    ids, windows, truth = explained_windows(run, request, read_source)
    probabilities = model.predict(windows, verbose=0)
    predicted, saliency = probabilities.argmax(axis=1), input_saliency(model, windows)
    classes, rows = run.data_meta.classes, []
    for index, (name, file_stem) in enumerate(zip(ids, safe_file_names(ids))):
        known = f", true {classes[truth[index]]}" if truth is not None else ""
        chosen = classes[predicted[index]]
        caption = f"{name}: predicted {chosen} ({probabilities[index].max():.0%}){known}"
        file_name = f"saliency-{file_stem}.png"
        title = f"{run.path.resolve().name}: what the prediction rests on"
        plot_window_saliency(windows[index], saliency[index], run.data_meta.channels, caption, title, out / file_name)
        true = None if truth is None else classes[truth[index]]
        rows.append({"file": file_name, "input": name, "predicted": chosen, "true": true})
    return rows


def explained_windows(run, request: ExplainRequest, read_source) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """(ids, windows, true classes or None) of the first `request.limit` windows of INPUT."""
    if request.data is not None:
        split = request.data.split(request.split)
        labelled = (split.y[: request.limit] >= 0).all()
        truth = split.y[: request.limit] if labelled else None
        return split.ids[: request.limit].astype(str).tolist(), split.x[: request.limit], truth
    ids, windows = [], []
    for source in request.sources:
        source_windows, source_ids = read_source(source, run.data_meta)
        windows.append(source_windows)
        ids.extend(source_ids.astype(str).tolist())
    return ids[: request.limit], np.concatenate(windows)[: request.limit], None
