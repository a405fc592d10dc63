"""What the tasks register in the data layer, light enough for `dltrain --help` to import: each
task's meta.json schema (by import path) and the SOURCEs `prepare` knows by name. They are filled
by `tasks.registry.register_task` when `dltrain.tasks` is imported."""

from __future__ import annotations

from dataclasses import dataclass

from dltrain.core.registry import Registry

# A task's name -> its `data.meta.MetaBase` subclass; meta.json's `task` field picks one.
META_TYPES: Registry = Registry("task")


@dataclass(frozen=True)
class SourceWord:
    """A SOURCE that `prepare` knows by name (`hapt`, `demo`): its task and the DATA_DIR its example writes."""

    task: str
    data_dir: str


SOURCE_WORDS: Registry = Registry("SOURCE word")
