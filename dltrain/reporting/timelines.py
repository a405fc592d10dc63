"""An activity timeline: over one recording's windows in order, the true activity, the predicted one
(mistakes marked) and the model's confidence in its answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dltrain.reporting.figures import pyplot, save_figure
from dltrain.reporting.screening import OKABE_ITO


def wrong_stretches(wrong: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) indices of each run of consecutive True values."""
    edges = np.diff(np.concatenate([[0], wrong.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def plot_timeline(
    truth: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, classes: list[str], title: str, path: Path
) -> None:
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    steps = np.arange(1, len(truth) + 1)
    wrong = truth != predicted
    figure, (activity_axes, confidence_axes) = plt.subplots(
        2,
        1,
        figsize=(min(16.0, 6.0 + len(truth) / 60), 2.2 + 0.32 * len(classes)),
        sharex=True,
        height_ratios=(max(1.6, 0.32 * len(classes)), 1.0),
        layout="constrained",
    )
    activity_axes.step(steps, truth, where="mid", color="black", linewidth=2.2, label="true", zorder=1)
    activity_axes.plot(
        steps[~wrong], predicted[~wrong], "o", color=OKABE_ITO[0], markersize=2.5, label="predicted, right"
    )
    activity_axes.plot(steps[wrong], predicted[wrong], "x", color=OKABE_ITO[3], markersize=5, label="predicted, wrong")
    activity_axes.set_yticks(range(len(classes)), [name.replace("_", " ") for name in classes], fontsize=7)
    activity_axes.set_ylim(-0.6, len(classes) - 0.4)
    activity_axes.grid(axis="y", alpha=0.3)
    activity_axes.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    activity_axes.set_title(f"accuracy {1 - wrong.mean():.3f} over {len(truth)} windows", fontsize=9, loc="left")
    confidence_axes.plot(steps, confidence, color=OKABE_ITO[0], linewidth=1)
    for first, last in wrong_stretches(wrong):  # one band per stretch of consecutive mistakes
        confidence_axes.axvspan(first + 0.5, last + 1.5, color=OKABE_ITO[3], alpha=0.25, linewidth=0)
    if wrong.any():
        confidence_axes.plot([], [], color=OKABE_ITO[3], alpha=0.25, linewidth=8, label="mistakes")
    confidence_axes.set_ylim(0, 1.02)
    confidence_axes.set_ylabel("confidence")
    confidence_axes.set_xlabel("window, in recording order")
    confidence_axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    confidence_axes.grid(alpha=0.3)
    if wrong.any():
        confidence_axes.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.suptitle(title, fontsize=10)
    save_figure(figure, path)
