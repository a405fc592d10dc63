"""The documented journey, walked once per session: README.md's bash lines in the README's order,
then every example of every command's help (its Examples section) in the journey's order, in one
working folder holding the small inputs they name. Each command finds what the ones before it made
(data/hapt, models/har-gru, ...). tests/test_help_examples.py asserts that every line ran; other
tests read what the walk left (test_reproduce compares a second reproduction with the walk's)."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest

import dltrain.experiments.reproduce as reproduce_module
from helpers.cli import invoke
from helpers.examples import README, budget, command_lines, small_baselines, write_inputs

# The order the examples run in: each finds the data and runs the earlier ones made.
JOURNEY = [
    ("prepare", "har"),
    ("prepare", "retina"),
    ("train",),
    ("refit",),
    ("evaluate",),
    ("predict",),
    ("blend",),
    ("explain",),
    ("export",),
    ("compare",),
    ("ensemble",),
    ("sweep",),
    ("lab",),
    ("reproduce",),
    ("config", "keys"),
    ("config", "show"),
    ("runs",),
    ("env",),
]
RECORD = "journey.json"  # one entry per command run: its words, exit code, stdout, whole output and seconds


def examples_in_help(path: tuple[str, ...]) -> list[str]:
    """The example lines of a command's help as an 80-column terminal shows them."""
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    section = result.stdout.split("Examples", 1)[1] if "Examples" in result.stdout else ""
    return [line.strip() for line in section.splitlines() if line.strip().startswith("dltrain ")]


def readme_words() -> list[list[str]]:
    return [shlex.split(line)[1:] for line in command_lines(README)]


def walk(folder: Path) -> None:
    """Every documented example, budgets appended (helpers.examples.budget), run in `folder`; a help
    example that is word for word a README line has run already and is not run twice. Reproduce's
    baselines are shrunk the same way (their real budgets are test_reproduce's)."""
    readme = readme_words()
    helps = [shlex.split(line)[1:] for path in JOURNEY for line in examples_in_help(path)]
    record = []
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setattr(reproduce_module, "load_baselines", small_baselines)
        write_inputs(folder)
        for words in readme + [words for words in helps if words not in readme]:
            started = time.perf_counter()
            result = invoke(*words, *budget(words))
            record.append(
                {
                    "words": words,
                    "exit_code": result.exit_code,
                    "stdout": result.stdout,
                    "output": result.output,
                    "seconds": round(time.perf_counter() - started, 1),  # where the walk's time goes
                }
            )
    (folder / RECORD).write_text(json.dumps(record, indent=1))


def walked(folder: Path) -> list[dict]:
    return json.loads((folder / RECORD).read_text())


def result_of(folder: Path, words: list[str]) -> dict:
    """What the walk recorded for the command `dltrain WORDS`."""
    (entry,) = [entry for entry in walked(folder) if entry["words"] == words]
    return entry
