"""The suite's one CliRunner and the leaf commands of the app."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from dltrain.cli.app import app

RUNNER = CliRunner()


def invoke(*arguments):
    """`dltrain ARGUMENTS` through Typer's CliRunner, the one runner of the suite (Paths become strings)."""
    return RUNNER.invoke(app, [str(argument) for argument in arguments])


def command_paths(command=None, prefix=()):
    """Every leaf command of the app, as its words after `dltrain`."""
    command = command or typer.main.get_command(app)
    for name, sub in getattr(command, "commands", {}).items():
        if getattr(sub, "commands", None):
            yield from command_paths(sub, (*prefix, name))
        else:
            yield (*prefix, name)
