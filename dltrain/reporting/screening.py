"""Figures of a grader as a screening test: the ROC curve of referable disease with its operating
points, and where the model's outputs fall for each true grade beside the cut points that grade them.
Colours: Okabe and Ito's colour-blind-safe palette."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dltrain.reporting.figures import pyplot, save_figure

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def plot_referable_roc(curves: dict[str, tuple], points: list[dict], title: str, path: Path) -> None:
    """`curves`: label -> (false positive rates, true positive rates, AUC); `points`: operating points,
    each {"label", "sensitivity", "specificity"}, drawn as markers on the first curve's plot."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6.2, 5.6), layout="constrained")
    for colour, (label, (false_positive, true_positive, auc)) in zip(OKABE_ITO, curves.items()):
        axes.plot(false_positive, true_positive, color=colour, linewidth=2, label=f"{label} (AUC {auc:.4f})")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="chance")
    for marker, point in zip(("o", "s", "D", "^", "v"), points):
        axes.plot(
            1 - point["specificity"],
            point["sensitivity"],
            marker=marker,
            color="black",
            markerfacecolor="white",
            markersize=8,
            linestyle="none",
            label=f"{point['label']}: sens. {point['sensitivity']:.2f}, spec. {point['specificity']:.2f}",
        )
    axes.set_xlim(-0.02, 1.02)
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel("1 - specificity (non-referable eyes referred)")
    axes.set_ylabel("sensitivity (referable eyes referred)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", loc="lower right")
    axes.set_title(title, fontsize=10)
    save_figure(figure, path)


def plot_outputs_by_grade(values_by_grade: dict[str, np.ndarray], cuts: list[float], what: str, title: str, path: Path):
    """Each true grade's outputs as a strip of points over a box, the cut points as vertical lines
    labelled with the grades they separate: where the thresholds sit and what they cut."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7.5, 0.7 * len(values_by_grade) + 1.8), layout="constrained")
    rng = np.random.default_rng(0)  # the vertical jitter of the points only
    labels = list(values_by_grade)
    for row, values in enumerate(values_by_grade.values()):
        if len(values):
            axes.boxplot(
                values, positions=[row], orientation="horizontal", widths=0.5, showfliers=False, manage_ticks=False
            )
            jitter = rng.uniform(-0.18, 0.18, len(values))
            axes.plot(values, row + jitter, "o", color=OKABE_ITO[0], alpha=0.45, markersize=3)
    for index, cut in enumerate(cuts):
        axes.axvline(cut, color=OKABE_ITO[3], linestyle="--", linewidth=1.2)
        axes.text(cut, len(labels) - 0.45, f"{index} | {index + 1}", color=OKABE_ITO[3], ha="center", fontsize=8)
    axes.set_yticks(range(len(labels)), [f"{label} ({len(values_by_grade[label])})" for label in labels])
    axes.set_ylim(-0.6, len(labels) - 0.2)
    axes.set_ylabel("true grade (images)")
    axes.set_xlabel(what)
    axes.grid(axis="x", alpha=0.3)
    axes.set_title(title, fontsize=10)
    save_figure(figure, path)
