"""`dltrain blend`: fit the run's second stage on its validation split (retina: both eyes of a
patient together) and write it into the run."""

from __future__ import annotations

from pathlib import Path

from dltrain.data.datadir import DataDir
from dltrain.runs.rundir import Run
from dltrain.tasks import task_of
from dltrain.tasks.base import check_tta


def blend_run(run_dir: Path, data_dir: Path | None = None, tta: str = "none"):
    run = Run.open(run_dir)
    task = task_of(run.data_meta)
    task.check_blend(run)  # the task's own refusal first: a HAR run has no second stage at all
    check_tta(task, tta)
    data = DataDir.open(Path(data_dir) if data_dir else run.data_dir)
    run.data_meta.check_compatible(data.meta, str(data.path))
    return task.blend(run, data, tta)
