"""Logging and progress display: Rich on a terminal, plain lines otherwise.

Everything goes to stderr so that stdout stays clean for machine-readable output
(`evaluate --json`, `train --print-config`).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
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
    """Route the `dltrain` logger through Rich (terminal) or plain lines (pipes, CI); without
    `verbose`, TensorFlow's start-up chatter is kept off the terminal (see `QUIET_TENSORFLOW`)."""
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
    quiet_tensorflow(not verbose)


def quiet_tensorflow(quiet: bool) -> None:
    """TensorFlow's C++ and absl chatter drowns the useful lines; --verbose keeps it. The log level
    applies to lines written once TensorFlow's logging is set up; the lines written before it (CUDA
    stub, oneDNN, cuInit, absl's "before InitializeLog") are kept off by importing TensorFlow with
    file descriptor 2 pointed elsewhere, whichever module imports it first (keras, a dltrain module)."""
    if quiet:
        if "TF_CPP_MIN_LOG_LEVEL" not in os.environ:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
            QUIET_TENSORFLOW.set_log_level = True
        # its Python warnings too: e.g. "retracing", expected when a backbone is unfrozen and recompiled
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    else:
        if QUIET_TENSORFLOW.set_log_level:  # ours, not the user's: --verbose given after the command
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
            QUIET_TENSORFLOW.set_log_level = False
        logging.getLogger("tensorflow").setLevel(logging.NOTSET)
    QUIET_TENSORFLOW.active = quiet
    if QUIET_TENSORFLOW not in sys.meta_path:
        sys.meta_path.insert(0, QUIET_TENSORFLOW)


@contextmanager
def c_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 pointed at /dev/null for the duration: what C++ code writes there (start-up
    lines, TFLite's delegate notice) is dropped; Python's exceptions still propagate."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def backend_chatter_silenced():
    """`c_stderr_silenced` unless --verbose: around backend calls that write notices from C++
    (e.g. TensorFlow Lite's "Created TensorFlow Lite XNNPACK delegate for CPU")."""
    from contextlib import nullcontext

    return c_stderr_silenced() if QUIET_TENSORFLOW.active else nullcontext()


class QuietTensorFlowLoader(importlib.abc.Loader):
    """TensorFlow's own loader, run with C++'s stderr silenced; its devices are probed while it still
    is (the cuInit line comes with the first probe)."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        with c_stderr_silenced():
            self.loader.exec_module(module)
            module.config.list_physical_devices("GPU")

    def __getattr__(self, name: str):
        return getattr(self.loader, name)


class QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """On `sys.meta_path` once logging is configured: the first `import tensorflow` of the process,
    from anywhere, goes through `QuietTensorFlowLoader` while `active` (no --verbose)."""

    active = False
    set_log_level = False  # whether TF_CPP_MIN_LOG_LEVEL is dltrain's setting (and --verbose may drop it)

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow" or not self.active or name in sys.modules:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = QuietTensorFlowLoader(spec.loader)
        return spec


QUIET_TENSORFLOW = QuietTensorFlowFinder()


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
    """Import TensorFlow (and probe its devices) with its C++ start-up chatter sent to /dev/null;
    with --verbose everything is shown. (Once logging is configured, any import of TensorFlow is
    quiet: this spells it out where TensorFlow is about to be needed.)"""
    if verbose is None:
        verbose = logger.level <= logging.DEBUG
    if verbose or "tensorflow" in sys.modules:
        import tensorflow

        return tensorflow
    with c_stderr_silenced():
        import tensorflow

        tensorflow.config.list_physical_devices("GPU")
    return tensorflow
