"""The `dltrain` command line: a thin layer over the library; each command checks its inputs and
calls one library function. TensorFlow and Keras are imported only inside the commands that need
them, so `--help` is instant."""

from __future__ import annotations

from typing import Annotated

import typer

from dltrain.cli import experiments, inference, info, prepare, train
from dltrain.cli.common import Commands, PrepareCommands, handle_sigterm, verbosity
from dltrain.core.console import configure_logging

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="dltrain",
    help="Train, evaluate and submit deep-learning baselines for activity recognition and retinopathy grading.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings=HELP_OPTIONS,
    cls=Commands,
)
prepare_app = typer.Typer(
    help="Turn raw data into a prepared DATA_DIR (windows or images, splits, meta.json).",
    no_args_is_help=True,
    context_settings=HELP_OPTIONS,
    cls=PrepareCommands,
)
config_app = typer.Typer(
    help="The configuration: every key with its description, or a preset resolved.",
    no_args_is_help=True,
    context_settings=HELP_OPTIONS,
)
app.add_typer(prepare_app, name="prepare")
prepare.add_prepare_commands(prepare_app)
app.command(epilog=train.TRAIN_EXAMPLES)(train.train)
app.command(epilog=train.REFIT_EXAMPLES)(train.refit)
app.command(epilog=inference.EVALUATE_EXAMPLES)(inference.evaluate)
app.command(epilog=inference.PREDICT_EXAMPLES)(inference.predict)
app.command(epilog=inference.BLEND_EXAMPLES)(inference.blend)
app.command(epilog=inference.EXPLAIN_EXAMPLES)(inference.explain)
app.command(epilog=experiments.COMPARE_EXAMPLES)(experiments.compare)
app.command(epilog=experiments.ENSEMBLE_EXAMPLES)(experiments.ensemble)
app.command(epilog=experiments.SWEEP_EXAMPLES)(experiments.sweep)
app.command(epilog=experiments.REPRODUCE_EXAMPLES)(experiments.reproduce)
app.command(epilog=experiments.LAB_EXAMPLES)(experiments.lab)
app.command(epilog=inference.EXPORT_EXAMPLES)(inference.export)
app.add_typer(config_app, name="config")
config_app.command("keys", epilog=info.CONFIG_KEYS_EXAMPLES)(info.config_keys)
config_app.command("show", epilog=info.CONFIG_SHOW_EXAMPLES)(info.config_show)
app.command(epilog=info.RUNS_EXAMPLES)(info.runs)
app.command(epilog=info.ENV_EXAMPLES)(info.env)


@app.callback()
def main(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Debug logs, TensorFlow messages and full tracebacks (also after a command)."
        ),
    ] = False,
    version: Annotated[
        bool | None,
        typer.Option(
            "--version",
            callback=info.show_version,
            is_eager=True,
            help="Print the versions of dltrain, Python, TensorFlow and Keras, the backend and the GPUs, and exit.",
        ),
    ] = None,
) -> None:
    verbosity["verbose"] = verbose
    configure_logging(verbose)
    handle_sigterm()
