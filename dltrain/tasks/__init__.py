"""The tasks dltrain knows, by the name a DATA_DIR's meta.json gives (`task`): the two built in,
then those installed packages declare in the `dltrain.tasks` entry-point group. Each registers
itself on import (`tasks/registry.py`); their code loads on first use."""

from __future__ import annotations

import dltrain.tasks.har  # noqa: F401  (registers itself)
import dltrain.tasks.retina  # noqa: F401
from dltrain.tasks.registry import CARDS, TASKS, load_task_plugins, task_of

load_task_plugins()

__all__ = ["CARDS", "TASKS", "task_of"]
