"""The tasks dltrain knows, by the name a DATA_DIR's meta.json gives (`task`); see `tasks/base.py`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dltrain.core.registry import Registry
from dltrain.tasks.har import HarTask
from dltrain.tasks.retina import RetinaTask

TASKS: Registry = Registry("task")
TASKS.register("har")(HarTask())
TASKS.register("retina")(RetinaTask())


def task_of(meta):
    """The task of a DATA_DIR's (or a run's) meta."""
    return TASKS.get(meta.task)


@contextmanager
def input_errors_explained(data) -> Iterator[None]:
    """A backend error caused by a damaged input file becomes one DataError naming the file."""
    try:
        yield
    except Exception as error:
        explained = task_of(data.meta).explain_input_error(data, error)
        if explained is None:
            raise
        raise explained from None
