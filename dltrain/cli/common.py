"""What every command shares: the one-line error exit, the verbosity switch, table width."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from functools import wraps

import typer
from rich.markup import escape
from typer.core import TyperGroup

from dltrain.core.console import stderr_console
from dltrain.core.errors import DATA_EXIT_CODE, DltrainError

REGRESSION_EXIT_CODE = 3  # `dltrain reproduce`: a baseline's metric left its band
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as shells report a Ctrl-C
TERMINATED_EXIT_CODE = 143  # 128 + SIGTERM
verbosity = {"verbose": False}  # set by the app's callback before any command runs


def user_errors(command: Callable) -> Callable:
    """Turn a DltrainError into one line on stderr and its exit code; --verbose keeps the traceback."""

    @wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DltrainError as error:
            if verbosity["verbose"]:
                raise
            # Escaped: messages quote user data, and "[...]" in it must not be read as Rich markup.
            stderr_console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            raise typer.Exit(error.exit_code) from None
        except (OSError, MemoryError) as error:  # the machine's side: disk full, read-only, out of memory
            if verbosity["verbose"]:
                raise
            stderr_console.print(
                f"[bold red]error:[/] {escape(environment_error_line(error))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(DATA_EXIT_CODE) from None
        except Exception as error:
            line = backend_error_line(error)
            if line is None or verbosity["verbose"]:
                raise
            stderr_console.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
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
    """TensorFlow's errors that are the machine's or the data's, not dltrain's, as one line
    (matched by name: TensorFlow is not imported here)."""
    name = type(error).__name__
    first = str(error).strip().splitlines()[0][:200] if str(error).strip() else name
    if name == "ResourceExhaustedError":
        return f"out of memory on the device ({first}); lower train.batch_size, the image --size or the model's size"
    if name in ("InvalidArgumentError", "DataLossError") and any(
        word in str(error).lower() for word in ("jpeg", "decode", "image")
    ):
        return f"a prepared image could not be decoded ({first}); run 'dltrain prepare' again"
    return None


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


def usage_error_line(error: typer.TyperException) -> str:
    """Click's usage error as one line, with the --set spelling for flags of other tools."""
    option = getattr(error, "option_name", None)  # an unknown option (click's NoSuchOption)
    if option in FLAG_HINTS:
        key = FLAG_HINTS[option]
        return f"no such option {option}; set the config key instead: --set {key}=VALUE"
    message = error.format_message()
    context = getattr(error, "ctx", None)
    hint = f" ('{context.command_path} -h' lists the options)" if context is not None else ""
    return f"{message}{hint}"


class Commands(TyperGroup):
    """Typer's command group, with every usage error (a bad option value, an unknown option, a
    missing argument) printed as one `error:` line instead of a panel, like every other error."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.TyperException as error:  # click's usage errors (Typer vendors click)
            if type(error).__name__ == "NoArgsIsHelpError":  # no arguments at all: the help, as usual
                error.show()
            else:
                line = escape(usage_error_line(error))
                stderr_console.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
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
