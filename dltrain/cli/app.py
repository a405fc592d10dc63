"""The `dltrain` command line: a thin layer over the library; each command checks its inputs and
calls one library function. TensorFlow and Keras are imported only inside the commands that need
them, so `--help` is instant."""

from __future__ import annotations

from typing import Annotated

import typer

from dltrain import __version__
from dltrain.cli import experiments, prepare, scoring, train
from dltrain.cli.common import Commands, handle_sigterm, verbosity
from dltrain.core.console import configure_logging

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="dltrain",
    help="Train, evaluate and submit deep-learning baselines for activity recognition and retinopathy grading.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=HELP_OPTIONS,
    cls=Commands,
)
prepare_app = typer.Typer(
    help="Turn raw data into a prepared DATA_DIR (windows or images, splits, meta.json).",
    no_args_is_help=True,
    context_settings=HELP_OPTIONS,
)
app.add_typer(prepare_app, name="prepare")
prepare_app.command("har")(prepare.prepare_har_command)
prepare_app.command("retina")(prepare.prepare_retina_command)
app.command()(train.train)
app.command()(scoring.evaluate)
app.command()(scoring.predict)
app.command()(scoring.blend)
app.command()(experiments.compare)
app.command()(experiments.sweep)
app.command()(experiments.reproduce)
app.command()(experiments.lab)
app.command()(scoring.export)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dltrain {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logs, TensorFlow messages and full tracebacks.")
    ] = False,
    version: Annotated[
        bool | None, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = None,
) -> None:
    verbosity["verbose"] = verbose
    configure_logging(verbose)
    handle_sigterm()
