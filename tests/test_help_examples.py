"""Every example command in every command's help (its Examples section) runs as written, in a
working folder holding the small inputs the examples name (a UCI HAR folder, a long CSV, a Kaggle
folder, a photograph; `hapt` and `demo` are the real thing), run in the journey's order so that
each example finds what the ones before it made (data/hapt, models/har-gru, ...).

Only budgets are appended, never anything that changes what a command does: fewer readings for
`hapt` windows, small images and few simulated patients, one epoch of a small model, and for
`reproduce` the same shrinking of its baselines' budgets (their real budgets are test_reproduce's).
"""

from __future__ import annotations

import shlex

import pytest
import typer
from conftest import command_paths, fundus_jpeg, invoke, kaggle_folder, write_long_csv, write_uci_folder

import dltrain.runs.reproduce as reproduce_module
from dltrain.cli.app import app
from dltrain.cli.common import example_lines

# The order the examples run in: each finds the data and runs the earlier ones made.
JOURNEY = [
    ("prepare", "har"),
    ("prepare", "retina"),
    ("train",),
    ("evaluate",),
    ("predict",),
    ("blend",),
    ("export",),
    ("compare",),
    ("sweep",),
    ("lab",),
    ("reproduce",),
    ("config", "keys"),
    ("config", "show"),
    ("runs",),
    ("env",),
]
SMALL_GRU = ["model.units=8", "model.layers=1", "model.conv_layers=0", "train.batch_size=64", "train.epochs=1"]
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
    if words[0] in ("sweep", "lab"):
        return settings(SMALL_GRU)
    return []


def examples_in_help(path: tuple[str, ...]) -> list[str]:
    """The example lines as an 80-column terminal shows them."""
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    section = result.stdout.split("Examples", 1)[1] if "Examples" in result.stdout else ""
    return [line.strip() for line in section.splitlines() if line.strip().startswith("dltrain ")]


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


ORIGINAL_BASELINES = reproduce_module.load_baselines


def write_inputs(root) -> None:
    """The inputs the examples name that are not made by an earlier example."""
    write_uci_folder(root)  # root / "UCI HAR Dataset"
    write_long_csv(root / "wisdm.csv")
    kaggle_folder(root / "kaggle", patients=8)
    fundus_jpeg(root / "photo.jpeg", level=2)


def test_every_command_has_examples_that_fit_80_columns():
    assert sorted(command_paths()) == sorted(JOURNEY), "a new command: add it to JOURNEY (and give it examples)"
    for path in JOURNEY:
        command = typer.main.get_command(app)
        for name in path:
            command = command.commands[name]
        written = example_lines(command.epilog)
        assert 1 <= len(written) <= 3, path
        assert examples_in_help(path) == written, f"{path}: an example wraps at 80 columns"
        assert all(
            line.startswith(f"dltrain {' '.join(path)} ") or line == f"dltrain {' '.join(path)}" for line in written
        )


def test_every_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(reproduce_module, "load_baselines", small_baselines)
    write_inputs(tmp_path)
    failures = []
    for path in JOURNEY:
        for line in examples_in_help(path):
            words = shlex.split(line)[1:]
            result = invoke(*words, *budget(words))
            if result.exit_code != 0:
                failures.append(f"{line}\n    exit {result.exit_code}: {result.output.strip()[-600:]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("words", [["prepare", "har", "hapt"], ["train", "data/retina-demo"], ["sweep"], ["env"]])
def test_budgets_only_shrink(words):
    appended = budget(words)
    assert all(
        part.startswith(
            (
                "--step",
                "--size",
                "--workers",
                "--patients",
                "--test-patients",
                "--set",
                "model.",
                "train.",
                "early_stopping.",
            )
        )
        or part.isdigit()
        for part in appended
    )
