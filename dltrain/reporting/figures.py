"""PNG figures written into a run: confusion matrix and learning curves (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dltrain.core.files import atomic_file


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: CI and servers have no display
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: Path) -> None:
    """Written whole or not at all, like every other file of a run."""
    try:
        with atomic_file(Path(path)) as partial:
            figure.savefig(partial, dpi=110)
    finally:
        pyplot().close(figure)


def plot_confusion_matrix(metrics: dict, path: Path, title: str | None = None) -> None:
    """Counts with the share of each true class (row percentages); `title` (the run), the split and its
    headline metrics above; class names horizontal on the y-axis, wrapped (or slanted) on the x-axis."""
    import textwrap

    plt = pyplot()
    matrix, classes = np.asarray(metrics["confusion_matrix"]), metrics["classes"]
    size = max(5.5, 0.9 * len(classes) + 2.5)
    figure, axes = plt.subplots(figsize=(size, size), layout="constrained")
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape, float), where=rows > 0)
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if shares[row, column] > 0.6 else "black" if count else "silver"
        share = shares[row, column]
        text = f"{count}\n{share:.0%}" if share >= 0.005 else f"{count}\n<1%" if count else "0"
        axes.text(column, row, text, ha="center", va="center", color=colour, fontsize=8)
    ticks = np.arange(len(classes))
    names = [textwrap.fill(name.replace("_", " "), 10, break_long_words=False) for name in classes]
    fits = 0.8 * size * 72 / len(classes) / 5  # characters of 8-point text a column holds
    if max(len(line) for name in names for line in name.splitlines()) <= fits:
        axes.set_xticks(ticks, names, fontsize=8)
    else:  # a word too long for its column even wrapped: whole names, slanted, never overlapping
        labels = [name.replace("_", " ") for name in classes]
        axes.set_xticks(ticks, labels, fontsize=8, rotation=40, ha="right", rotation_mode="anchor")
    axes.set_yticks(ticks, [name.replace("_", " ") for name in classes], fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true (row: share of the class)")
    kappa = f", kappa {metrics['quadratic_weighted_kappa']:.4f}" if "quadratic_weighted_kappa" in metrics else ""
    axes.set_title(f"accuracy {metrics['accuracy']:.4f}{kappa}, macro F1 {metrics['macro_f1']:.4f}", fontsize=10)
    where = f"{metrics.get('split', '?')} split, {metrics['count']} samples"
    figure.suptitle(f"{title}: {where}" if title else where, fontsize=11)
    save_figure(figure, path)


def curve_panels(history: pd.DataFrame) -> list[str]:
    """The panels of the learning curves: loss, the metrics logged with a validation value, the rate."""
    metrics = [name for name in ("accuracy", "kappa", "mae") if name in history or f"val_{name}" in history]
    return ["loss", *metrics] + (["learning_rate"] if "learning_rate" in history else [])


def plot_learning_curves(
    history: pd.DataFrame, path: Path, title: str | None = None, kept_epoch: int | None = None
) -> bool:
    """Loss and metrics per epoch (history.csv as `Run.history` read and checked it), train vs
    validation, the kept epoch marked, and the learning rate in a panel of its own; `title` names
    the run. False if there is no history to plot."""
    if history.empty:
        return False
    save_figure(learning_curves_figure(history, title, kept_epoch), path)
    return True


def learning_curves_figure(history: pd.DataFrame, title: str | None, kept_epoch: int | None):
    plt = pyplot()
    panels = curve_panels(history)
    columns = 2 if len(panels) == 4 else len(panels)
    rows = -(-len(panels) // columns)
    figure, axes_grid = plt.subplots(
        rows, columns, figsize=(4.6 * columns, 3.6 * rows + 0.5), squeeze=False, layout="constrained"
    )
    epochs = history["epoch"] + 1 if "epoch" in history else pd.Series(np.arange(1, len(history) + 1))
    for axes, name in zip(axes_grid.flat, panels):
        plot_curve_panel(axes, history, epochs, name, kept_epoch)
    for axes in list(axes_grid.flat)[len(panels) :]:
        axes.set_visible(False)
    if title:
        figure.suptitle(title, fontsize=11)
    return figure


def epoch_axis(axes, final: int) -> None:
    """Whole epochs from 1 to the last; a short run gets every epoch as a tick (Matplotlib's integer
    locator falls back to fractions, 0.945 ... 1.050, when the axis holds fewer than two)."""
    from matplotlib.ticker import MaxNLocator

    axes.set_xlim(0.5, max(final, 1) + 0.5)
    if final <= 12:
        axes.set_xticks(range(1, max(final, 1) + 1))
    else:
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")


def last_epoch(history: pd.DataFrame) -> int:
    """The last epoch a history holds, counted from 1."""
    return int(history["epoch"].max()) + 1 if "epoch" in history and len(history) else len(history)


def point_marker(points: int) -> str | None:
    """A marker on every point of a short curve: a line of one point draws nothing at all."""
    return "o" if points < 30 else None


def plot_curve_panel(axes, history: pd.DataFrame, epochs: pd.Series, name: str, kept_epoch: int | None) -> None:
    marker = point_marker(len(history))
    if name == "learning_rate":
        axes.plot(epochs, history[name], color="tab:green", marker=marker, markersize=3)
        rates = history[name].dropna()
        if len(rates) and rates.min() > 0 and rates.max() > 100 * rates.min():  # decades apart, none at 0 (warm-up)
            axes.set_yscale("log")
        else:
            axes.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        axes.set_ylabel("learning rate")
    else:
        if name in history:
            axes.plot(epochs, history[name], label="train", marker=marker, markersize=3)
        if f"val_{name}" in history:
            axes.plot(epochs, history[f"val_{name}"], label="validation", marker=marker, markersize=3)
        axes.set_ylabel(name)
    if kept_epoch is not None and 1 <= kept_epoch <= int(epochs.max()):
        axes.axvline(kept_epoch, color="grey", linestyle=":", linewidth=1.2, label=f"kept (epoch {kept_epoch})")
        kept = history[epochs.values == kept_epoch]
        if f"val_{name}" in history and len(kept):
            axes.plot([kept_epoch], kept[f"val_{name}"], marker="o", color="tab:orange", markersize=7, zorder=3)
    epoch_axis(axes, int(epochs.max()))
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")


def plot_run_comparison(histories: dict[str, pd.DataFrame], path: Path) -> None:
    """Validation (solid) and training (dashed) curves of several runs, one colour per run:
    loss, then accuracy (or kappa, or MAE: the first of them every run logged)."""
    plt = pyplot()
    second = next(
        (
            name
            for name in ("accuracy", "kappa", "mae")
            if all(name in h or f"val_{name}" in h for h in histories.values())
        ),
        None,
    )
    panels = ["loss"] + ([second] if second else [])
    figure, axes_list = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axes, name in zip(axes_list[0], panels):
        for index, (label, history) in enumerate(histories.items()):
            colour = colours[index % len(colours)]
            epochs = history["epoch"] + 1 if "epoch" in history else np.arange(1, len(history) + 1)
            marker = point_marker(len(history))
            if f"val_{name}" in history:
                axes.plot(epochs, history[f"val_{name}"], color=colour, label=label, marker=marker, markersize=3)
            if name in history:
                axes.plot(epochs, history[name], color=colour, linestyle="--", alpha=0.6, marker=marker, markersize=3)
        epoch_axis(axes, max((last_epoch(history) for history in histories.values()), default=1))
        axes.set_ylabel(f"{name} (validation solid, training dashed)")
        axes.grid(alpha=0.3)
    axes_list[0][-1].legend(fontsize="small")
    figure.tight_layout()
    save_figure(figure, path)


def plot_fold_comparison(frame: pd.DataFrame, metric: str, path: Path) -> None:
    """Each grid point's mean validation score over the folds (a diamond), one standard deviation
    either side, and every fold's own score as a dot: a difference smaller than the spread is not one.
    Points, not bars: the axis does not start at 0, and a bar's length would suggest it did."""
    plt = pyplot()
    mean, spread = frame[f"{metric} mean"], frame[f"{metric} std"].fillna(0)
    figure, axes = plt.subplots(figsize=(max(5.0, 1.1 * len(frame) + 2), 4.5))
    positions = np.arange(len(frame))
    axes.errorbar(positions, mean, yerr=spread, fmt="D", color="#4c72b0", capsize=6, markersize=7, label="mean ± std")
    for position, values in zip(positions, frame[f"{metric} per fold"]):
        axes.plot([position + 0.12] * len(values), values, "o", color="black", markersize=3)
    axes.plot([], [], "o", color="black", markersize=3, label="one fold")
    every = [value for values in frame[f"{metric} per fold"] for value in values] + list(mean + spread)
    low, high = float(np.nanmin(every + list(mean - spread))), float(np.nanmax(every))
    margin = max(0.01, 0.08 * (high - low))
    axes.set_ylim(low - margin, high + margin)
    axes.set_xlim(-0.6, len(frame) - 0.4)
    axes.set_xticks(positions, [str(name) for name in frame["point"]], rotation=20, ha="right", fontsize="small")
    axes.set_ylabel(f"validation {metric} over folds")
    axes.set_title(f"{len(frame)} settings, {int(frame['folds'].max())} subject-grouped folds")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    save_figure(figure, path)
