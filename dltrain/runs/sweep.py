"""`dltrain sweep`: one run per point of a product grid of config values, then `compare` over them.

Run folders are named after their grid point, so a sweep run again skips the points that are
complete, resumes those that were interrupted, and trains the rest.
"""

from __future__ import annotations

import itertools
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from dltrain.config.loading import load_config, validate_config
from dltrain.config.schema import Config
from dltrain.core.errors import DltrainError, UsageError
from dltrain.core.outputs import RUN_DIR, check_against_inputs, check_output, refuse_file_as_folder
from dltrain.runs.rundir import CONFIG_FILE, HISTORY_FILE, LAST_MODEL_FILE, STATUS_COMPLETE, Run

logger = logging.getLogger("dltrain")


@dataclass
class GridPoint:
    name: str  # the run folder's name
    overrides: list[str]  # `--set` assignments for this point
    config: Config


def parse_grid(assignments: list[str]) -> dict[str, list[str]]:
    """["optimizer.name=sgd,adam", "train.batch_size=32,64"] -> {key: [raw values]} in the given order."""
    grid: dict[str, list[str]] = {}
    for assignment in assignments:
        key, separator, raw = assignment.partition("=")
        key = key.strip()
        values = [value.strip() for value in raw.split(",") if value.strip()]
        if not separator or not key or not values:
            raise UsageError(
                f"--grid {assignment!r}: expected key=value1,value2,..., e.g. --grid optimizer.name=sgd,adam"
            )
        if key in grid:
            raise UsageError(f"--grid {key} is given twice; list all its values in one --grid")
        if len(set(values)) != len(values):
            raise UsageError(f"--grid {key}: a value is listed twice")
        grid[key] = values
    if not grid:
        raise UsageError("give at least one --grid key=value1,value2,...")
    return grid


def _folder_name(point: dict[str, str]) -> str:
    parts = [f"{key}-{value}" for key, value in point.items()]
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", "_".join(parts))


def grid_points(config_name: str | None, grid: dict[str, list[str]], overrides: list[str]) -> list[GridPoint]:
    """Every point of the product grid, each validated before anything trains."""
    points = []
    for values in itertools.product(*grid.values()):
        point = dict(zip(grid.keys(), values))
        point_overrides = list(overrides) + [f"{key}={value}" for key, value in point.items()]
        points.append(GridPoint(_folder_name(point), point_overrides, load_config(config_name, point_overrides)))
    names = [point.name for point in points]
    if len(set(names)) != len(names):
        raise UsageError("two grid points would share a run folder name; use values that differ in letters or digits")
    return points


def _existing_state(run_dir: Path, config: Config) -> str:
    """'new'; 'complete' or 'resumable' (this point's run, done or interrupted); 'stale' (this point's
    run, stopped before its first epoch ended); 'foreign' (anything else in the folder)."""
    if not run_dir.exists():
        return "new"
    try:
        run = Run.open(run_dir, finished=False)
    except DltrainError:  # no config or provenance, or damaged ones: not a run this sweep can use
        return "stale" if _same_config(run_dir, config) else "foreign"
    if run.config != config:
        return "foreign"
    if run.provenance.status == STATUS_COMPLETE:
        return "complete"
    return "resumable" if (run_dir / LAST_MODEL_FILE).is_file() else "stale"


def _same_config(run_dir: Path, config: Config) -> bool:
    """A run that stopped before training wrote its provenance still has its config.yaml."""
    try:
        return (
            validate_config(yaml.safe_load((run_dir / CONFIG_FILE).read_text()), str(run_dir), saved_run=True) == config
        )
    except Exception:  # no config, or a damaged one
        return False


def sweep(
    data_dir: Path,
    config_name: str | None,
    grid: dict[str, list[str]],
    overrides: list[str],
    out: Path,
    force: bool = False,
):
    """Train every grid point under `out`, then compare them; returns (comparison, failures).
    Without `config_name`, every point starts from the data's task preset."""
    from dltrain.data.datadir import DataDir
    from dltrain.runs.compare import read_run_record, write_comparison
    from dltrain.tasks import task_of

    config_name = config_name or task_of(DataDir.open(data_dir).meta).preset

    points = grid_points(config_name, grid, overrides)
    failures = train_points(data_dir, config_name, points, out, force)
    finished = [out / point.name for point in points if (out / point.name / HISTORY_FILE).is_file()]
    frame = write_comparison([read_run_record(path) for path in finished], out) if finished else None
    return frame, failures


def train_points(
    data_dir: Path,
    config_name: str | None,
    points: list[GridPoint],
    out: Path,
    force: bool = False,
    extra_callbacks=None,
) -> list[tuple[str, str]]:
    """Train each point into `out/<point name>`: complete runs are kept, interrupted ones resumed,
    a failing one logged and skipped. `extra_callbacks(point)` gives callbacks for a new training.
    Returns the failures as (point name, message)."""
    from dltrain.data.datadir import DataDir
    from dltrain.training.session import check_training_inputs, resume_run, train_run

    refuse_file_as_folder(out)
    data = DataDir.open(data_dir)
    check_against_inputs(out, [data.path])
    for point in points:  # refuse a whole sweep before its first run, not at its fifth
        check_training_inputs(data, point.config)
        if _existing_state(out / point.name, point.config) == "foreign":
            if not force:
                raise UsageError(
                    f"{out / point.name} holds another run; choose another --out or pass --force to replace it"
                )
            check_output(out / point.name, RUN_DIR, force)  # --force replaces a run, never a folder of other files
    logger.info("%d runs into %s", len(points), out)
    failures = []
    for index, point in enumerate(points, start=1):
        run_dir = out / point.name
        state = _existing_state(run_dir, point.config)
        logger.info(
            "run %d/%d: %s (%s)",
            index,
            len(points),
            point.name,
            {"new": "training", "complete": "complete already, kept", "resumable": "resuming"}.get(
                state, "training again"
            ),
        )
        try:
            if state == "resumable":
                resume_run(run_dir, data_dir)
            elif state != "complete":
                if state == "stale":  # this point's own run, stopped before its first epoch ended
                    shutil.rmtree(run_dir)
                callbacks = extra_callbacks(point) if extra_callbacks else ()
                train_run(data, run_dir, point.config, config_name, force=state == "foreign", extra_callbacks=callbacks)
        except DltrainError as error:  # one diverging point should not cost the others
            logger.error("run %s failed: %s", point.name, error)
            failures.append((point.name, str(error)))
    return failures
