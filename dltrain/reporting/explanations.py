"""Figures of what a model looked at: photographs beside their Grad-CAM heatmaps, and a signal window
with the saliency of each reading. Heatmaps use `inferno` (perceptually uniform, readable without
colour vision and in greyscale)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dltrain.reporting.figures import pyplot, save_figure

HEATMAP = "inferno"


def plot_photograph_sheet(
    images: np.ndarray, heatmaps: np.ndarray, captions: list[str], title: str, path: Path, columns: int = 4
) -> None:
    """Each photograph beside itself under its heatmap (half transparent), captioned; `columns` pairs a row."""
    plt = pyplot()
    count = len(images)
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    figure, axes_grid = plt.subplots(
        rows, 2 * columns, figsize=(2.3 * 2 * columns, 2.5 * rows + 0.6), squeeze=False, layout="constrained"
    )
    for index in range(rows * columns):
        photograph_axes, heat_axes = axes_grid[index // columns, 2 * (index % columns) : 2 * (index % columns) + 2]
        for axes in (photograph_axes, heat_axes):
            axes.set_axis_off()
        if index >= count:
            continue
        photograph_axes.imshow(images[index])
        heat_axes.imshow(images[index])
        heat_axes.imshow(heatmaps[index], cmap=HEATMAP, alpha=0.5, vmin=0, vmax=1)
        photograph_axes.set_title(captions[index], fontsize=7, loc="left")
    figure.suptitle(title, fontsize=10)
    save_figure(figure, path)


def plot_window_saliency(
    window: np.ndarray, saliency: np.ndarray, channels: list[str], caption: str, title: str, path: Path
) -> None:
    """The window's channels as lines (top) and each reading's saliency as a heat strip per channel
    (bottom), on the same time axis."""
    plt = pyplot()
    figure, (signal_axes, heat_axes) = plt.subplots(
        2,
        1,
        figsize=(8.5, 3.0 + 0.28 * len(channels)),
        sharex=True,
        height_ratios=(2.2, max(0.9, 0.28 * len(channels))),
        layout="constrained",
    )
    for index, name in enumerate(channels):
        signal_axes.plot(window[:, index], linewidth=1, label=name)
    signal_axes.set_ylabel("reading")
    signal_axes.legend(fontsize="x-small", ncols=min(len(channels), 6), loc="upper right")
    signal_axes.grid(alpha=0.3)
    signal_axes.set_title(caption, fontsize=9, loc="left")
    image = heat_axes.imshow(
        saliency.T, aspect="auto", cmap=HEATMAP, vmin=0, vmax=1, interpolation="nearest", extent=None
    )
    heat_axes.set_yticks(range(len(channels)), channels, fontsize=7)
    heat_axes.set_xlabel("reading in the window")
    figure.colorbar(image, ax=heat_axes, label="saliency", fraction=0.03)
    figure.suptitle(title, fontsize=10)
    save_figure(figure, path)
