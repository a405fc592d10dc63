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


def _save(figure, path: Path) -> None:
    """Written whole or not at all, like every other file of a run."""
    plt = _pyplot()
    path = Path(path)
    partial = path.with_name(f"{path.stem}.partial{path.suffix}")
    try:
        figure.savefig(partial, dpi=110)
        partial.replace(path)
    finally:
        plt.close(figure)
        partial.unlink(missing_ok=True)


def plot_confusion_matrix(matrix: list[list[int]], classes: list[str], title: str, path: Path) -> None:
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    size = max(5.0, 0.7 * len(classes) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay(np.asarray(matrix), display_labels=classes).plot(ax=axes, cmap="Blues", colorbar=False, xticks_rotation=45)
    axes.set_title(title)
    figure.tight_layout()
    _save(figure, path)


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
    _save(figure, path)
    return True


def plot_run_comparison(histories: dict[str, pd.DataFrame], path: Path) -> None:
    """Validation (solid) and training (dashed) curves of several runs, one colour per run:
    loss, then accuracy (or kappa, or MAE: the first of them every run logged)."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    second = next((name for name in ("accuracy", "kappa", "mae") if all(name in h or f"val_{name}" in h for h in histories.values())), None)
    panels = ["loss"] + ([second] if second else [])
    figure, axes_list = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axes, name in zip(axes_list[0], panels):
        for index, (label, history) in enumerate(histories.items()):
            colour = colours[index % len(colours)]
            epochs = history["epoch"] + 1 if "epoch" in history else np.arange(1, len(history) + 1)
            if f"val_{name}" in history:
                axes.plot(epochs, history[f"val_{name}"], color=colour, label=label)
            if name in history:
                axes.plot(epochs, history[name], color=colour, linestyle="--", alpha=0.6)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel(f"{name} (validation solid, training dashed)")
        axes.grid(alpha=0.3)
    axes_list[0][-1].legend(fontsize="small")
    figure.tight_layout()
    _save(figure, path)
