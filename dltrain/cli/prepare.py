"""`dltrain prepare <task>`: one subcommand per registered task, its options and examples declared
by the task (`TaskCard`); here each is given the one-line error exit and the hint of what comes next."""

from __future__ import annotations

import logging
import shlex
from functools import wraps
from pathlib import Path

import typer

from dltrain.cli.common import examples, user_errors
from dltrain.tasks import CARDS

logger = logging.getLogger("dltrain")


def add_prepare_commands(prepare_app: typer.Typer) -> None:
    for name in CARDS.names():
        card = CARDS.get(name)
        prepare_app.command(name, epilog=examples(*card.examples))(user_errors(with_next_step(card.prepare)))


def with_next_step(prepare):
    """The prepare command, then the line that says what to run next with the DATA_DIR it wrote."""

    @wraps(prepare)
    def command(*args, **kwargs):
        prepare(*args, **kwargs)
        if "out" in kwargs:  # click passes every parameter by name; a command without --out gets no hint
            log_next_step(kwargs["out"])

    return command


def log_next_step(data_dir: Path) -> None:
    logger.info("next: dltrain train %s  (the task's preset; --config and --set change it)", shlex.quote(str(data_dir)))
