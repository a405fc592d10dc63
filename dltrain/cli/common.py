"""What every command shares: the one-line error exit, the verbosity switch (before or after the
command), the order of the commands, their Examples sections, table width."""

from __future__ import annotations

import copy
import logging
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from functools import wraps

import typer
from rich.markup import escape
from typer.core import TyperGroup

from dltrain.core.console import configure_logging, stderr_console
from dltrain.core.errors import DATA_EXIT_CODE, USAGE_EXIT_CODE, DltrainError, backend_failure
from dltrain.core.vocabulary import SPLITS

REGRESSION_EXIT_CODE = 3  # `dltrain reproduce`: a baseline's metric left its band
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as shells report a Ctrl-C
TERMINATED_EXIT_CODE = 143  # 128 + SIGTERM
verbosity = {"verbose": False}  # set by the app's callback before any command runs, or by a command's --verbose
EXAMPLES_TITLE = "Examples"


def print_error(line: str) -> None:
    """The one look of an error: `error: ...` on stderr, escaped (messages quote user data, and
    "[...]" in it must not be read as Rich markup)."""
    stderr_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)


def user_errors(command: Callable) -> Callable:
    """Turn a DltrainError into one line on stderr and its exit code; --verbose keeps the traceback."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DltrainError as error:
            if verbosity["verbose"]:
                raise
            print_error(str(error))
            raise typer.Exit(error.exit_code) from None
        except (OSError, MemoryError) as error:  # the machine's side: disk full, read-only, out of memory
            if verbosity["verbose"]:
                raise
            print_error(environment_error_line(error))
            raise typer.Exit(DATA_EXIT_CODE) from None
        except Exception as error:
            line = backend_error_line(error)
            if line is None or verbosity["verbose"]:
                raise
            print_error(line)
            raise typer.Exit(DATA_EXIT_CODE) from None
        except Terminated:
            stderr_console.print("terminated", highlight=False)
            raise typer.Exit(TERMINATED_EXIT_CODE) from None
        except KeyboardInterrupt:
            stderr_console.print("interrupted", highlight=False)
            raise typer.Exit(INTERRUPTED_EXIT_CODE) from None

    return wrapper


def environment_error_line(error: BaseException) -> str:
    if isinstance(error, MemoryError):
        return "out of memory; lower train.batch_size, the image --size or the model's size"
    where = f": {error.filename}" if getattr(error, "filename", None) else ""
    also = f" -> {error.filename2}" if getattr(error, "filename2", None) else ""
    return f"{error.strerror or type(error).__name__}{where}{also}"


def backend_error_line(error: Exception) -> str | None:
    """The backends' errors that are the machine's or the data's, not dltrain's, as one line
    (matched by name: TensorFlow is not imported here)."""
    failure = backend_failure(error)
    return None if failure is None else str(failure)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be: every command stops the same way for both (workers
    end, staging folders are cleaned or left resumable, a training run is marked interrupted)."""


def _terminate(signal_number, frame) -> None:
    raise Terminated()


def handle_sigterm() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)


# Flags that other training tools take, and the config key that dltrain sets with --set instead.
FLAG_HINTS = {
    "--epochs": "train.epochs",
    "--lr": "optimizer.learning_rate",
    "--learning-rate": "optimizer.learning_rate",
    "--batch-size": "train.batch_size",
    "--bs": "train.batch_size",
    "--seed": "train.seed",
    "--optimizer": "optimizer.name",
    "--dropout": "model.dropout",
    "--patience": "early_stopping.patience",
}


SPLIT_ALIASES = {"validation": "val", "valid": "val"}


def split_name(value: str | None) -> str | None:
    """--split: a split's name, with `validation` accepted for `val` (the course's folder name)."""
    if value is None:
        return None
    name = SPLIT_ALIASES.get(value.lower(), value.lower())
    if name not in SPLITS:
        raise typer.BadParameter(f"{value!r} is not a split; choose {', '.join(SPLITS)} (or validation)")
    return name


def examples(*commands: str) -> str:
    """A command's Examples section (its help's epilog): real command lines, one a line, each short
    enough for an 80-column terminal; tests/test_help_examples.py runs every one."""
    return f"[bold]{EXAMPLES_TITLE}[/bold]\n" + "\n".join(escape(command) for command in commands)


def example_lines(epilog: str | None) -> list[str]:
    return [line for line in (epilog or "").splitlines() if line.startswith("dltrain ")]


def usage_error_line(error: typer.TyperException) -> str:
    """Click's usage error as one line, with the --set spelling for flags of other tools, and for a
    missing argument or option the command's own example of it."""
    option = getattr(error, "option_name", None)  # an unknown option (click's NoSuchOption)
    if option in FLAG_HINTS:
        key = FLAG_HINTS[option]
        return f"no such option {option}; set the config key instead: --set {key}=VALUE"
    context = getattr(error, "ctx", None)
    missing = missing_parameter_line(error, context)
    if missing is not None:
        return missing
    message = error.format_message().replace("Value error, ", "")  # Typer converts values with pydantic
    hint = f" ('{context.command_path} -h' lists the options)" if context is not None else ""
    return f"{message}{hint}"


def missing_parameter_line(error: typer.TyperException, context) -> str | None:
    """`missing --out; for example: dltrain prepare har hapt --out data/hapt` (the command's own example)."""
    parameter = getattr(error, "param", None)
    if type(error).__name__ != "MissingParameter" or parameter is None or context is None:
        return None
    is_option = bool(getattr(parameter, "opts", None)) and parameter.opts[0].startswith("-")
    name = max(parameter.opts, key=len) if is_option else (parameter.metavar or parameter.name.upper())
    usable = [line for line in example_lines(context.command.epilog) if not is_option or f"{name} " in line]
    if usable:
        return f"missing {name}; for example: {usable[0]}"
    return f"missing {name} ('{context.command_path} -h' lists the options)"


def flag_type_column(display_type_rich: Callable) -> Callable:
    """Typer (0.29) shows `<bool>` in the type column of a flag (`--verbose -v <bool>`), which reads as
    if the flag took a value; a flag gets an empty column instead."""

    @wraps(display_type_rich)
    def display(option, ctx):
        return "" if option.is_flag and option.metavar is None else display_type_rich(option, ctx)

    return display


if hasattr(typer.core.TyperOption, "display_type_rich"):  # the Typers that show it
    typer.core.TyperOption.display_type_rich = flag_type_column(typer.core.TyperOption.display_type_rich)


def set_verbose(context, parameter, value: bool) -> None:
    """A command's own --verbose (`dltrain train DATA --verbose`): the same as `dltrain --verbose train DATA`."""
    if value and not verbosity["verbose"]:
        verbosity["verbose"] = True
        configure_logging(True)


def add_verbose_option(command, verbose) -> None:
    """The app's --verbose, accepted after every command too (listed in each command's help)."""
    if not any(parameter.name == "verbose" for parameter in command.params):
        option = copy.copy(verbose)
        option.expose_value, option.is_eager, option.callback = False, True, set_verbose
        command.params.append(option)
    for subcommand in getattr(command, "commands", {}).values():
        add_verbose_option(subcommand, verbose)


class Commands(TyperGroup):
    """Typer's command group, with every usage error (a bad option value, an unknown option, a
    missing argument) printed as one `error:` line instead of a panel, like every other error;
    the commands listed in the order of the journey (prepare, train, evaluate, predict first), and
    --verbose accepted after any command."""

    JOURNEY = ("prepare", "train", "evaluate", "predict")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        verbose = next((parameter for parameter in self.params if parameter.name == "verbose"), None)
        if verbose is not None:
            for command in self.commands.values():
                add_verbose_option(command, verbose)

    def list_commands(self, ctx) -> list[str]:
        names = super().list_commands(ctx)
        first = [name for name in self.JOURNEY if name in names]
        return first + [name for name in names if name not in first]

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as error:  # click's usage errors (Typer vendors click)
            if type(error).__name__ == "NoArgsIsHelpError":  # no arguments at all: the help, as usual
                error.show()
            else:
                print_error(usage_error_line(error))
            sys.exit(error.exit_code)
        except typer.Abort:
            stderr_console.print("aborted", highlight=False)
            sys.exit(1)
        if not standalone_mode:
            return result
        sys.exit(result if isinstance(result, int) else 0)


def table_width() -> int | None:
    """The terminal's width; in a pipe or a file, wide enough that no column is cut short."""
    return None if sys.stdout.isatty() else 250


class PrepareCommands(TyperGroup):
    """`dltrain prepare`: a SOURCE given where the task belongs (`dltrain prepare hapt`) is answered
    with the command meant, in one line."""

    def resolve_command(self, ctx, args):
        name = args[0] if args else None
        if name is not None and not name.startswith("-") and name not in self.commands:
            from dltrain.tasks.registry import guess_task

            print_error(
                f"'prepare' takes the task first: dltrain prepare {guess_task(name)} {shlex.quote(name)} --out DATA_DIR"
            )
            raise typer.Exit(USAGE_EXIT_CODE)
        return super().resolve_command(ctx, args)


def report_run(run_dir) -> None:
    """What `train`, `refit` and `ensemble` end with: the kept model, its validation scores, the figures, what next."""
    from dltrain.runs.rundir import Run
    from dltrain.runs.summary import completion_lines

    logging.getLogger("dltrain").info("run complete: %s", run_dir)
    for line in completion_lines(Run.open(run_dir)):
        stderr_console.print(line, highlight=False, markup=False, soft_wrap=True)  # a command stays on one line to copy
