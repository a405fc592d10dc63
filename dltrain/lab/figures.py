"""One figure per lab experiment: loss curves of every cell, and the panel that makes its point."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dltrain.reporting.figures import pyplot, save_figure


def plot_experiment(experiment, results, path: Path) -> None:
    plt = pyplot()
    panels = 2 if experiment.extra_panel not in (None, "seconds") else 1
    figure, axes_list = plt.subplots(1, panels, figsize=(6.5 * panels, 4.5), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    by_seconds = experiment.extra_panel == "seconds"
    axes = axes_list[0][0]
    for index, result in enumerate(results):
        if not result.usable:
            continue
        colour = colours[index % len(colours)]
        x = (
            np.cumsum(result.epoch_seconds)
            if by_seconds and result.epoch_seconds
            else np.arange(1, len(result.history) + 1)
        )
        axes.plot(
            x,
            result.history["val_loss"],
            color=colour,
            marker="o",
            markersize=3,
            label=result.label + (" (diverged)" if result.problem else ""),
        )
        axes.plot(x, result.history["loss"], color=colour, linestyle="--", alpha=0.6)
    axes.set_xlabel("training seconds" if by_seconds else "epoch")
    axes.set_ylabel("loss (validation solid, training dashed)")
    axes.set_title(experiment.title)
    axes.grid(alpha=0.3)
    if any(result.usable for result in results):
        axes.legend(fontsize="small")
    else:
        axes.text(
            0.5, 0.5, "no cell finished an epoch (see the report)", ha="center", va="center", transform=axes.transAxes
        )
    if panels == 2:
        _extra_panel(experiment.extra_panel, results, axes_list[0][1], colours)
    figure.tight_layout()
    save_figure(figure, path)


def _extra_panel(kind: str, results, axes, colours) -> None:
    if kind == "activations":  # output spread per layer before training, one line per initialisation
        for index, result in enumerate(results):
            rows = result.extra.get("layers", [])
            if rows:
                axes.plot(
                    [row["layer"] for row in rows],
                    [row["std"] for row in rows],
                    color=colours[index % len(colours)],
                    marker="o",
                    label=result.label,
                )
        axes.set_yscale("symlog", linthresh=1e-3)
        axes.set_ylabel("output standard deviation before training")
        axes.tick_params(axis="x", labelrotation=30)
        axes.legend(fontsize="small")
    elif kind == "learning_rate":
        for index, result in enumerate(results):
            if result.usable:
                axes.plot(
                    np.arange(1, len(result.history) + 1),
                    result.history["learning_rate"],
                    color=colours[index % len(colours)],
                    marker="o",
                    label=result.label,
                )
        axes.set_xlabel("epoch")
        axes.set_ylabel("learning rate at the epoch's start")
        axes.legend(fontsize="small")
    elif kind == "gap":
        from dltrain.lab.experiments import kept_gap

        usable = [result for result in results if result.usable]
        axes.bar(
            [result.label for result in usable], [kept_gap(result) for result in usable], color=colours[: len(usable)]
        )
        axes.set_ylabel("train - validation accuracy at the kept epoch")
        axes.tick_params(axis="x", labelrotation=20)
    axes.grid(alpha=0.3)
