"""Where a task makes itself known: one `register_task` call from its package's `__init__.py`.

A task package holds its `Task` (`task.py`), its meta.json schema (`meta.py`), its readers and
its `dltrain prepare <task>` command. Registering it fills the registries of the layers below with
import paths, not imports: `META_TYPES` and `SOURCE_WORDS` (data.registries), `PRESETS` (config.presets) and `TASKS`;
its card (what the command line shows: the prepare command, its examples, the SOURCEs it claims)
is kept here. So `dltrain --help` lists every task without importing NumPy or pandas.

Tasks outside dltrain are found through the `dltrain.tasks` entry-point group: a package that
declares `[project.entry-points."dltrain.tasks"] ecg = "dltrain_ecg"` is imported (and so
registers itself) when `dltrain.tasks` is. See docs/architecture.md, "Adding a task".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dltrain.config.presets import PRESETS, preset_names
from dltrain.core.registry import Registry
from dltrain.data.registries import META_TYPES, SOURCE_WORDS, SourceWord

logger = logging.getLogger("dltrain")
ENTRY_POINT_GROUP = "dltrain.tasks"


@dataclass(frozen=True)
class TaskCard:
    """What the command line knows of a task without importing its code."""

    name: str
    prepare: Callable  # `dltrain prepare <name>`: a function whose parameters are Typer-annotated options
    examples: tuple[str, ...]  # real `dltrain prepare <name> ...` lines (the help's Examples; each one tested)
    claims: Callable[[str], int]  # how surely a SOURCE is this task's: 0 no, 1 maybe, 2 surely (cheap checks only)
    source_words: dict[str, str]  # SOURCEs prepare knows by name -> the DATA_DIR its example writes


TASKS: Registry = Registry("task")  # name -> the Task instance (tasks/base.py), imported on first use
CARDS: Registry = Registry("task")  # name -> its TaskCard


def register_task(card: TaskCard, task: str, meta: str, presets: dict | None = None) -> None:
    """Register a task: `task` and `meta` are "module:attribute" paths of its Task instance and its
    MetaBase subclass; `presets` maps preset names to YAML files the task ships (its default among them)."""
    check_names_are_free(card, presets or {})
    CARDS.register(card.name)(card)
    TASKS.register_lazy(card.name, task)
    META_TYPES.register_lazy(card.name, meta)
    for word, data_dir in card.source_words.items():
        SOURCE_WORDS.register(word)(SourceWord(card.name, data_dir))
    for name, path in (presets or {}).items():
        PRESETS.register(name)(Path(path))


def check_names_are_free(card: TaskCard, presets: dict) -> None:
    """Every name a task claims checked before any is registered, so a clash leaves nothing half-done."""
    taken = [
        *([f"task {card.name!r}"] if card.name in CARDS or card.name in META_TYPES else []),
        *[f"SOURCE word {word!r}" for word in card.source_words if word in SOURCE_WORDS],
        *[f"preset {name!r}" for name in presets if name in preset_names()],
    ]
    if taken:
        raise ValueError(f"task {card.name!r} claims names already taken: {', '.join(taken)}")


def task_of(meta):
    """The task of a DATA_DIR's (or a run's) meta."""
    return TASKS.get(meta.task)


def guess_task(source: str) -> str:
    """The task a SOURCE most likely belongs to, as `prepare`'s hint names it (`har|retina` when unsure)."""
    scores = {name: CARDS.get(name).claims(source) for name in CARDS.names()}
    best = max(scores.values(), default=0)
    return "|".join(name for name, score in scores.items() if score == best or not best)


def load_task_plugins() -> None:
    """Import the task packages that installed distributions declare; one that fails is skipped with a warning."""
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            entry.load()
        except Exception as error:  # a broken plugin must not take the built-in tasks down with it
            logger.warning("task plugin %s (%s) not loaded: %s", entry.name, entry.value, error)
