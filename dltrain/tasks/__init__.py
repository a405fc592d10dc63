"""The tasks dltrain knows, by the name a DATA_DIR's meta.json gives (`task`); see `tasks/base.py`."""

from __future__ import annotations

from dltrain.core.registry import Registry
from dltrain.tasks.har import HarTask
from dltrain.tasks.retina import RetinaTask

TASKS: Registry = Registry("task")
TASKS.register("har")(HarTask())
TASKS.register("retina")(RetinaTask())


def task_of(meta):
    """The task of a DATA_DIR's (or a run's) meta."""
    return TASKS.get(meta.task)
