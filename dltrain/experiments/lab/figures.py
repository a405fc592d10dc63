"""One figure per lab experiment: each cell's loss curves (every seed thin, the mean over the seeds
thick), and the panel that makes its point."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dltrain.reporting.figures import pyplot, save_figure


def mean_curve(curves: list[np.ndarray]) -> np.ndarray:
    """The mean over the curves at each epoch, over those that reached it (runs may stop early)."""
    length = max(len(curve) for curve in curves)
    padded = np.full((len(curves), length), np.nan)
    for row, curve in zip(padded, curves):
        row[: len(curve)] = curve
    return np.nanmean(padded, axis=0)


def x_values(run, by_seconds: bool) -> np.ndarray:
    if by_seconds and run.epoch_seconds:
        return np.cumsum(run.epoch_seconds)
    return np.arange(1, len(run.history) + 1, dtype=float)


def plot_cell(axes, result, colour, by_seconds: bool) -> None:
    runs = result.usable_runs
    for run in runs:
        axes.plot(x_values(run, by_seconds), run.history["val_loss"], color=colour, linewidth=0.8, alpha=0.35)
    x = mean_curve([x_values(run, by_seconds) for run in runs])
    label = f"{result.label} ({len(runs)} seeds)" + (" (a run failed or diverged)" if result.problems else "")
    axes.plot(x, mean_curve([run.history["val_loss"].to_numpy() for run in runs]), color=colour, marker="o",
              markersize=3, linewidth=2, label=label)  # fmt: skip
    axes.plot(x, mean_curve([run.history["loss"].to_numpy() for run in runs]), color=colour, linestyle="--", alpha=0.7)


def plot_experiment(experiment, results, path: Path) -> None:
    plt = pyplot()
    panels = 2 if experiment.extra_panel not in (None, "seconds") else 1
    figure, axes_list = plt.subplots(1, panels, figsize=(6.5 * panels, 4.5), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    by_seconds = experiment.extra_panel == "seconds"
    axes = axes_list[0][0]
    for index, result in enumerate(results):
        if result.usable:
            plot_cell(axes, result, colours[index % len(colours)], by_seconds)
    axes.set_xlabel("training seconds" if by_seconds else "epoch")
    axes.set_ylabel("loss: validation solid, training dashed")
    axes.set_title(experiment.title)
    axes.grid(alpha=0.3)
    if any(result.usable for result in results):
        axes.legend(fontsize="small", title="mean over the seeds thick, each seed thin", title_fontsize="small")
    else:
        axes.text(
            0.5, 0.5, "no cell finished an epoch (see the report)", ha="center", va="center", transform=axes.transAxes
        )
    if panels == 2:
        PANELS[experiment.extra_panel](results, axes_list[0][1], colours)
        axes_list[0][1].grid(alpha=0.3)
    figure.tight_layout()
    save_figure(figure, path)


def activations_panel(results, axes, colours) -> None:
    """Output spread per layer before training, mean over the seeds, one line per initialisation."""
    for index, result in enumerate(results):
        probes = [run.extra["layers"] for run in result.runs if run.extra.get("layers")]
        if probes:
            spreads = np.mean([[row["std"] for row in rows] for rows in probes], axis=0)
            layers = [row["layer"] for row in probes[0]]
            axes.plot(layers, spreads, color=colours[index % len(colours)], marker="o", label=result.label)
    axes.set_yscale("symlog", linthresh=1e-3)
    axes.set_ylabel("output std before training\n(mean over seeds)")
    axes.tick_params(axis="x", labelrotation=30)
    axes.legend(fontsize="small")


def learning_rate_panel(results, axes, colours) -> None:
    for index, result in enumerate(results):
        if result.usable:
            run = result.usable_runs[0]  # the schedule is the same for every seed
            axes.plot(
                np.arange(1, len(run.history) + 1),
                run.history["learning_rate"],
                color=colours[index % len(colours)],
                marker="o",
                label=result.label,
            )
    axes.set_xlabel("epoch")
    axes.set_ylabel("learning rate at the epoch's start")
    axes.legend(fontsize="small")


def gap_panel(results, axes, colours) -> None:
    """The kept models' train minus unseen accuracy (inference mode; unseen: the held-out validation windows where
    the experiment holds some out, else validation): the mean as a bar, each seed a dot."""
    measured = [result for result in results if result.extra_score("gap").count]
    for index, result in enumerate(measured):
        score = result.extra_score("gap")
        axes.bar(index, score.mean, color=colours[index % len(colours)], alpha=0.7)
        axes.scatter([index] * score.count, score.values, color="black", s=12, zorder=3)
    axes.set_xticks(range(len(measured)), [result.label for result in measured], rotation=20)
    axes.set_ylabel("train - held-out accuracy of the kept model")


PANELS = {"activations": activations_panel, "learning_rate": learning_rate_panel, "gap": gap_panel}
