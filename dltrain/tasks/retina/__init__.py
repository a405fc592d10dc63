"""Diabetic-retinopathy grading: fundus photographs cropped, squared and resized (sources.py,
images.py, prepare.py), split by patient; `task.py` trains and scores them, with grading thresholds
(grading.py, kappa.py), test-time augmentation and the blend of both eyes (blend.py)."""

from __future__ import annotations

from pathlib import Path

from dltrain.tasks.registry import TaskCard, register_task
from dltrain.tasks.retina.command import EXAMPLES, prepare_command

PHOTOGRAPH_SUFFIXES = (".jpeg", ".jpg", ".png")


def claims(source: str) -> int:
    """`demo`, a photograph, or a folder of them (Kaggle's or the course's layout) surely."""
    path = Path(source)
    if source == "demo" or path.suffix.lower() in PHOTOGRAPH_SUFFIXES:
        return 2
    if path.is_dir() and (
        (path / "trainLabels.csv").is_file() or any(path.glob("*/*.jpeg")) or any(path.glob("*.jpeg"))
    ):
        return 2
    return 0


register_task(
    TaskCard("retina", prepare_command, EXAMPLES, claims, source_words={"demo": "data/retina-demo"}),
    task="dltrain.tasks.retina.task:TASK",
    meta="dltrain.tasks.retina.meta:RetinaMeta",
)
