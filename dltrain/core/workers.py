"""Worker processes that end with their command: Ctrl-C and SIGTERM stop the command and its
workers at once, never leaving a worker blocked on a queue nobody reads."""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Iterator
from contextlib import contextmanager


def _worker_signals() -> None:
    # The command itself handles Ctrl-C (it stops the pool); a SIGTERM sent to the whole process
    # group ends a worker at once, as it would any process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def worker_pool(workers: int) -> Iterator[multiprocessing.pool.Pool]:
    """A process pool that is terminated (not waited for) when the command stops on an error,
    Ctrl-C or SIGTERM, and closed normally otherwise."""
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_worker_signals)
    try:
        yield pool
    except BaseException:
        pool.terminate()
        pool.join()
        raise
    pool.close()
    pool.join()
