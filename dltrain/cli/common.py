"""What every command shares: the one-line error exit, the verbosity switch, table width."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps

import typer
from rich.markup import escape

from dltrain.core.console import stderr_console
from dltrain.core.errors import DltrainError

REGRESSION_EXIT_CODE = 3  # `dltrain reproduce`: a baseline's metric left its band
INTERRUPTED_EXIT_CODE = 130
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
        except KeyboardInterrupt:
            stderr_console.print("interrupted", highlight=False)
            raise typer.Exit(INTERRUPTED_EXIT_CODE) from None

    return wrapper


def table_width() -> int | None:
    """The terminal's width; in a pipe or a file, wide enough that no column is cut short."""
    return None if sys.stdout.isatty() else 250
