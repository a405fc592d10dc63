"""PNG figures written into a run: confusion matrix and learning curves (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: CI and servers have no display
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(matrix: list[list[int]], classes: list[str], title: str, path: Path) -> None:
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    size = max(5.0, 0.7 * len(classes) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay(np.asarray(matrix), display_labels=classes).plot(ax=axes, cmap="Blues", colorbar=False, xticks_rotation=45)
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_learning_curves(history_csv: Path, path: Path) -> bool:
    """Loss and accuracy per epoch, train vs validation; False if there is no history to plot."""
    if not Path(history_csv).is_file():
        return False
    history = pd.read_csv(history_csv)
    if history.empty:
        return False
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    metrics = [name for name in ("loss", "accuracy") if name in history]
    figure, axes_list = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    epochs = history["epoch"] + 1 if "epoch" in history else np.arange(1, len(history) + 1)
    for axes, name in zip(axes_list[0], metrics):
        axes.plot(epochs, history[name], label="train")
        if f"val_{name}" in history:
            axes.plot(epochs, history[f"val_{name}"], label="validation")
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(name)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
