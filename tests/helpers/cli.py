"""The suite's one CliRunner and the leaf commands of the app."""

from __future__ import annotations

import functools

import typer
from typer.testing import CliRunner

from dltrain.cli.app import app

RUNNER = CliRunner()


def invoke(*arguments):
    """`dltrain ARGUMENTS` through Typer's CliRunner, the one runner of the suite (Paths become strings)."""
    return RUNNER.invoke(app, [str(argument) for argument in arguments])


@functools.cache
def app_command():
    """The app's click command tree, built once per process (a few milliseconds each time otherwise)."""
    return typer.main.get_command(app)


def command_paths(command=None, prefix=()):
    """Every leaf command of the app, as its words after `dltrain`."""
    command = command or app_command()
    for name, sub in getattr(command, "commands", {}).items():
        if getattr(sub, "commands", None):
            yield from command_paths(sub, (*prefix, name))
        else:
            yield (*prefix, name)
