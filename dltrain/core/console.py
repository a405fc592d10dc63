"""Logging and progress display: Rich on a terminal, plain lines otherwise.

Everything goes to stderr so that stdout stays clean for machine-readable output
(`evaluate --json`, `train --print-config`).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

logger = logging.getLogger("dltrain")
stderr_console = Console(stderr=True)


def configure_logging(verbose: bool = False) -> None:
    """Route the `dltrain` logger through Rich (terminal) or plain lines (pipes, CI)."""
    level = logging.DEBUG if verbose else logging.INFO
    if stderr_console.is_terminal:
        handler: logging.Handler = RichHandler(
            console=stderr_console, show_path=False, rich_tracebacks=verbose, markup=False
        )
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    # TensorFlow's C++ and absl chatter drowns the useful lines; --verbose keeps it.
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # its Python warnings too: e.g. "retracing", expected when a backbone is unfrozen and recompiled
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


def is_interactive() -> bool:
    return stderr_console.is_terminal


def new_progress(*extra_columns) -> Progress:
    """The one look of every progress display: description, bar, n/total, elapsed, remaining."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    return Progress(*columns, *extra_columns, console=stderr_console, transient=False)


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[callable]:
    """Yield an `advance(n=1)` function; a Rich bar on a terminal, a few log lines otherwise."""
    if is_interactive():
        progress = new_progress()
        with progress:
            task = progress.add_task(description, total=total)
            yield lambda n=1: progress.advance(task, n)
        return

    done = 0
    started = last_report = time.monotonic()

    def advance(n: int = 1) -> None:
        # Plain mode (pipes, CI logs): a line every 10 seconds at most, and one at the end.
        nonlocal done, last_report
        done += n
        now = time.monotonic()
        if done == total or now - last_report >= 10:
            last_report = now
            logger.info("%s: %d/%s (%.1f s)", description, done, total if total is not None else "?", now - started)

    yield advance


def import_tensorflow_quietly(verbose: bool | None = None):
    """Import TensorFlow (and probe its devices) with its C++ start-up chatter sent to /dev/null.

    The CUDA-stub and absl lines are written by C++ before any log level applies, so the only way
    to keep a clean terminal is to point file descriptor 2 elsewhere for the duration; Python
    exceptions still propagate. With --verbose everything is shown.
    """
    if verbose is None:
        verbose = logger.level <= logging.DEBUG
    if verbose or "tensorflow" in sys.modules:
        import tensorflow

        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow

        tensorflow.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tensorflow
