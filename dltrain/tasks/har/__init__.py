"""Activity recognition: inertial windows -> one of the activities. SOURCE layouts (HAPT, UCI HAR,
classroom CSV folders, long CSV, UEA .ts) are read into labelled windows (readers/), split by
subject (splits.py) and written to a DATA_DIR (prepare.py); `task.py` trains and scores them."""

from __future__ import annotations

from pathlib import Path

from dltrain.tasks.har.command import EXAMPLES, prepare_command
from dltrain.tasks.registry import TaskCard, register_task


def claims(source: str) -> int:
    """`hapt`, a CSV or .ts file surely; any other folder maybe (a classroom or UCI HAR folder)."""
    path = Path(source)
    if source == "hapt" or path.suffix.lower() in (".csv", ".ts"):
        return 2
    return 1 if path.is_dir() else 0


register_task(
    TaskCard("har", prepare_command, EXAMPLES, claims, source_words={"hapt": "data/hapt"}),
    task="dltrain.tasks.har.task:TASK",
    meta="dltrain.tasks.har.meta:HarMeta",
)
