"""The budgets appended to documented example commands (help epilogs, README.md) so that they run
in seconds: only budgets, never anything that changes what a command does."""

from __future__ import annotations

import re
from pathlib import Path

import dltrain.experiments.reproduce as reproduce_module
from helpers.data import fundus_jpeg, kaggle_folder, write_long_csv, write_uci_folder

README = Path(__file__).resolve().parents[2] / "README.md"
# The real baselines, read before a test swaps `load_baselines` for `small_baselines`.
ORIGINAL_BASELINES = reproduce_module.load_baselines

SMALL_GRU = ["model.units=8", "model.layers=1", "model.conv_layers=0", "train.batch_size=64", "train.epochs=1"]
SMALL_GRU += ["train.min_steps_per_epoch=0"]  # one pass an epoch: the preset's 50 steps are a budget too
SMALL_CNN = ["model.conv_layers=2", "model.conv_filters=4", "model.dense_units=8", "train.batch_size=4"]
SMALL_CNN += ["train.epochs=1", "early_stopping.patience=0"]
SMALL_DEMO = {"patients": 12, "test_patients": 0, "size": 32, "mix": "balanced"}


def settings(values: list[str]) -> list[str]:
    return [part for value in values for part in ("--set", value)]


def budget(words: list[str]) -> list[str]:
    """What is appended to an example: a smaller budget only (the last value of an option wins)."""
    if words[:3] == ["prepare", "har", "hapt"]:
        return ["--step", "256"]  # windows of 128 readings as always, 4 times fewer of them
    if words[:2] == ["prepare", "retina"]:
        demo = ["--patients", "12", "--test-patients", "2"] if words[2] == "demo" else []
        return ["--size", "32", "--workers", "1", *demo]
    if words[0] == "train":
        return settings(SMALL_CNN if any("retina" in word for word in words) else SMALL_GRU)
    if words[0] == "refit":
        return ["--epochs", "1"]  # the run's kept epoch, or fewer
    if words[0] in ("sweep", "lab"):
        return settings(SMALL_GRU)
    return []


def small_baselines():
    """baselines.yaml with its budgets shrunk to the smallest that still prepares, trains and scores."""
    baselines = ORIGINAL_BASELINES()
    for baseline in baselines.values():
        for budget_values in baseline.budgets.values():
            small = SMALL_CNN if baseline.source == "demo" else SMALL_GRU
            budget_values.prepare = dict(SMALL_DEMO) if baseline.source == "demo" else {"step": 256}
            budget_values.set = [*budget_values.set, *small]
            budget_values.band = (0.0, 1.0)
    return baselines


def command_lines(path: Path, kinds=("bash",)) -> list[str]:
    """The `dltrain ...` lines of the page's blocks of those kinds: continuation lines joined,
    comments and leading environment assignments (NAME=value) dropped."""
    pattern = r"```(?:" + "|".join(kinds) + r")\n(.*?)```"
    blocks = re.findall(pattern, path.read_text(), flags=re.DOTALL)
    lines = []
    for line in "\n".join(blocks).replace("\\\n", " ").splitlines():
        line = re.sub(r"^(\s*[A-Z_]+=\S+\s+)+", "", line.split(" #")[0]).strip()
        if re.match(r"dltrain(\s|$)", line):
            lines.append(line)
    return lines


def write_inputs(root: Path) -> None:
    """The inputs the documented examples name that no earlier example makes: a UCI HAR folder, a
    long CSV, a Kaggle folder, a photograph (`hapt` and `demo` are the real thing)."""
    write_uci_folder(root)  # root / "UCI HAR Dataset"
    write_long_csv(root / "wisdm.csv")
    kaggle_folder(root / "kaggle", patients=8)
    fundus_jpeg(root / "photo.jpeg", level=2)
