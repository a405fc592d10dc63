"""Every documented example runs as written: README.md's bash lines in the README's order, then every
example in every command's help (its Examples section) in the journey's order, in one working folder
holding the small inputs they name (a UCI HAR folder, a long CSV, a Kaggle folder, a photograph;
`hapt` and `demo` are the real thing), so that each finds what the ones before it made (data/hapt,
models/har-gru, ...). A help example that is word for word a README line has run already and is not
run twice: the README and the help show the same journey.

Only budgets are appended, never anything that changes what a command does: fewer readings for
`hapt` windows, small images and few simulated patients, one epoch of a small model, and for
`reproduce` the same shrinking of its baselines' budgets (their real budgets are test_reproduce's).
"""

from __future__ import annotations

import shlex

import pytest
import typer
from helpers.cli import command_paths
from helpers.examples import budget
from helpers.journey import JOURNEY, examples_in_help, readme_words, walked

from dltrain.cli.app import app
from dltrain.cli.common import example_lines


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


@pytest.mark.xdist_group(name="journey")
def test_every_documented_example_runs(journey):
    record = walked(journey)
    failures = [
        f"dltrain {shlex.join(entry['words'])}\n    exit {entry['exit_code']}: {entry['output'].strip()[-600:]}"
        for entry in record
        if entry["exit_code"] != 0
    ]
    assert not failures, "\n".join(failures)
    readme = readme_words()
    assert [entry["words"] for entry in record[: len(readme)]] == readme  # the README first, in its order
    helps = [shlex.split(line)[1:] for path in JOURNEY for line in examples_in_help(path)]
    assert all(words in [entry["words"] for entry in record] for words in helps)
    assert len(record) > len(readme)  # the help shows more than the README


BUDGETED = [["prepare", "har", "hapt"], ["train", "data/retina-demo"], ["refit", "models/har-gru"], ["sweep"], ["env"]]


@pytest.mark.parametrize("words", BUDGETED)
def test_budgets_only_shrink(words):
    appended = budget(words)
    assert all(
        part.startswith(
            (
                "--step",
                "--size",
                "--workers",
                "--patients",
                "--epochs",
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
