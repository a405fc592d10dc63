"""A run folder's life cycle around one training: created (or staged beside the run it replaces),
swapped in once complete, marked interrupted (and resumable) when stopped, removed when nothing in it
could be resumed; and its history trimmed to the epochs whose checkpoint exists."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dltrain.config.schema import Config
from dltrain.core.errors import DivergedError
from dltrain.core.files import stale_siblings, swap_in, write_text_atomic
from dltrain.runs.provenance import Provenance
from dltrain.runs.rundir import HISTORY_FILE, LAST_MODEL_FILE, PROVENANCE_FILE, Run

logger = logging.getLogger("dltrain")


@contextmanager
def staged_run(run_dir: Path, config: Config, provenance: Provenance) -> Iterator[Run]:
    """The new run, created in `run_dir`; over an existing run (--force, checked before), created in a
    staging folder beside it that takes its place only once the training inside succeeded: a failed or
    interrupted run keeps the old one. The caller holds the output lock."""
    for stale in stale_siblings(run_dir):  # staging folders of killed runs: nobody else holds the lock
        shutil.rmtree(stale, ignore_errors=True)
    replacing = run_dir.is_dir() and any(run_dir.iterdir())
    target = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.partial-", dir=run_dir.parent)) if replacing else run_dir
    target.mkdir(parents=True, exist_ok=True)
    run = Run.create(target, config, provenance)
    try:
        yield run
    except KeyboardInterrupt:
        if not replacing:
            mark_interrupted(run)
            raise
        shutil.rmtree(target, ignore_errors=True)
        logger.warning("interrupted: %s keeps its previous run; the new one was not finished", run_dir)
        raise
    except BaseException as error:
        resumable = (target / LAST_MODEL_FILE).is_file() and not isinstance(error, DivergedError)
        if not replacing and resumable:
            # Epochs were trained and checkpointed (an error while scoring, say): keep them to resume.
            mark_interrupted(run, "stopped by an error")
            raise
        # A run that failed before its first checkpoint explains nothing; do not leave it looking like a run.
        shutil.rmtree(target, ignore_errors=True)
        raise
    if replacing:
        swap_in(target, run_dir)


@contextmanager
def interrupted_on_failure(run: Run) -> Iterator[None]:
    """A resumed run stopped again (Ctrl-C or an error) stays resumable, marked interrupted."""
    try:
        yield
    except KeyboardInterrupt:
        mark_interrupted(run)
        raise
    except Exception:
        mark_interrupted(run, "stopped by an error")
        raise


def trim_history(run: Run, epochs_done: int) -> None:
    """A run killed after the CSV row of an epoch but before its checkpoint has one row too many;
    that epoch is trained again, so its row goes. A damaged history.csv is refused (one line)."""
    history = run.history()
    if len(history) > epochs_done:
        write_text_atomic(run.path / HISTORY_FILE, history.iloc[:epochs_done].to_csv(index=False))


def mark_interrupted(run: Run, why: str = "interrupted") -> None:
    if (run.path / PROVENANCE_FILE).is_file():
        run.provenance.status = "interrupted"
        run.save_provenance()
    resumable = (run.path / LAST_MODEL_FILE).is_file()
    logger.warning(
        "%s: %s is incomplete%s",
        why,
        run.path,
        f"; continue it with: dltrain train --resume {run.path}" if resumable else "",
    )
