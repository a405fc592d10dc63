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

from dltrain.config.loading import load_config
from dltrain.config.schema import Config
from dltrain.core.errors import DltrainError, UsageError
from dltrain.core.outputs import RUN_DIR, check_against_inputs, check_output, refuse_file_as_folder
from dltrain.runs.rundir import CONFIG_FILE, HISTORY_FILE, LAST_MODEL_FILE, STATUS_COMPLETE, Run, read_config_file

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


def check_validation_is_held_out(config: Config, who: str) -> Config:
    """`config`, unless it trains on the validation split that `who` compares its runs on."""
    if config.train.fit_on != "train":
        raise UsageError(
            f"train.fit_on={config.train.fit_on}: {who} compares its runs on the validation split, which that "
            "setting trains on; use train.fit_on=train, then 'dltrain refit' the chosen run"
        )
    return config


def grid_points(config_name: str | None, grid: dict[str, list[str]], overrides: list[str]) -> list[GridPoint]:
    """Every point of the product grid, each validated before anything trains."""
    points = []
    for values in itertools.product(*grid.values()):
        point = dict(zip(grid.keys(), values))
        point_overrides = list(overrides) + [f"{key}={value}" for key, value in point.items()]
        config = check_validation_is_held_out(load_config(config_name, point_overrides), "a sweep")
        points.append(GridPoint(_folder_name(point), point_overrides, config))
    names = [point.name for point in points]
    if len(set(names)) != len(names):
        raise UsageError("two grid points would share a run folder name; use values that differ in letters or digits")
    return points


def _existing_state(run_dir: Path, config: Config, data_meta=None) -> str:
    """'new'; 'complete' or 'resumable' (this point's run, done or interrupted); 'stale' (this point's
    run, stopped before its first epoch ended); 'foreign' (anything else in the folder, including a run
    of this config on other data, e.g. a fold written again for another --folds)."""
    if not run_dir.exists():
        return "new"
    try:
        run = Run.open(run_dir, finished=False)
    except DltrainError:  # no config or provenance, or damaged ones: not a run this sweep can use
        return "stale" if _same_config(run_dir, config) else "foreign"
    if run.config != config or (data_meta is not None and run.data_meta != data_meta):
        return "foreign"
    if run.provenance.status == STATUS_COMPLETE:
        return "complete"
    return "resumable" if (run_dir / LAST_MODEL_FILE).is_file() else "stale"


def _same_config(run_dir: Path, config: Config) -> bool:
    """A run that stopped before training wrote its provenance still has its config.yaml."""
    try:
        return read_config_file(run_dir / CONFIG_FILE) == config
    except DltrainError:  # no config, or a damaged one
        return False


FOLDS_FOLDER = "folds"  # in a sweep's --out: the fold DATA_DIRs of --folds


@dataclass
class Job:
    point: GridPoint
    data_dir: Path
    run_dir: Path


def sweep(
    data_dir: Path,
    config_name: str | None,
    grid: dict[str, list[str]],
    overrides: list[str],
    out: Path,
    force: bool = False,
    folds: int | None = None,
):
    """Train every grid point under `out`, then compare them; returns (comparison, failures).
    Without `config_name`, every point starts from the data's task preset. With `folds`, every point
    is trained once per cross-validation fold of the train and val data (`out/<point>/fold-k`) and
    compared on its mean validation score: the test split plays no part."""
    from dltrain.data.datadir import DataDir
    from dltrain.tasks import task_of

    data = DataDir.open(data_dir)
    task = task_of(data.meta)
    config_name = config_name or task.preset
    points = grid_points(config_name, grid, overrides)
    if folds is None:
        jobs = [Job(point, data.path, out / point.name) for point in points]
    else:
        from dltrain.training.preflight import check_training_inputs

        check_jobs_output(out, [data.path])
        for point in points:  # the refusals the folds would meet, before any fold is written
            check_training_inputs(data, point.config)
        fold_dirs = task.cross_validation_folds(data, folds, out / FOLDS_FOLDER)
        jobs = [Job(point, fold_dir, out / point.name / fold_dir.name) for point in points for fold_dir in fold_dirs]
    # the fold folders are this sweep's own output: only the data they came from is an input
    failures = train_jobs(jobs, config_name, out, force, inputs=[data.path])
    return compare_jobs(jobs, out, folds is not None), failures


def compare_jobs(jobs: list[Job], out: Path, by_point: bool):
    """comparison.csv and .png of the finished runs; with `by_point`, one row per grid point over its folds."""
    from dltrain.runs.compare import read_run_record, write_comparison, write_fold_comparison

    finished = [job for job in jobs if (job.run_dir / HISTORY_FILE).is_file()]
    if not finished:
        return None
    if not by_point:
        return write_comparison([read_run_record(job.run_dir) for job in finished], out)
    records: dict[str, list] = {job.point.name: [] for job in jobs}  # every point, even one with no fold done
    for job in finished:
        records[job.point.name].append(read_run_record(job.run_dir))
    folds = len(jobs) // len(records)
    return write_fold_comparison({point: runs for point, runs in records.items() if runs}, out, folds)


def check_jobs_output(out: Path, inputs: list[Path]) -> None:
    refuse_file_as_folder(out)
    check_against_inputs(out, inputs)


def train_points(
    data_dir: Path,
    config_name: str | None,
    points: list[GridPoint],
    out: Path,
    force: bool = False,
    extra_callbacks=None,
) -> list[tuple[str, str]]:
    """Train each point into `out/<point name>` (see train_jobs)."""
    jobs = [Job(point, Path(data_dir), out / point.name) for point in points]
    return train_jobs(jobs, config_name, out, force, extra_callbacks)


def train_jobs(
    jobs: list[Job],
    config_name: str | None,
    out: Path,
    force: bool = False,
    extra_callbacks=None,
    inputs: list[Path] | None = None,
) -> list[tuple[str, str]]:
    """Train each job's point on its data into its run folder: complete runs are kept, interrupted
    ones resumed, a failing one logged and skipped. `extra_callbacks(point)` gives callbacks for a
    new training; `inputs` are the folders `out` must keep clear of (default: the jobs' data).
    Returns the failures as (run folder, message)."""
    from dltrain.data.datadir import DataDir
    from dltrain.training.preflight import check_training_inputs

    data = {path: DataDir.open(path) for path in dict.fromkeys(job.data_dir for job in jobs)}
    check_jobs_output(out, inputs if inputs is not None else [opened.path for opened in data.values()])
    enclosing = set()
    for job in jobs:  # refuse a whole sweep before its first run, not at its fifth
        check_training_inputs(data[job.data_dir], job.point.config)
        if _existing_state(job.run_dir, job.point.config, data[job.data_dir].meta) == "foreign":
            if not force:
                raise UsageError(f"{job.run_dir} holds another run; choose another --out or pass --force to replace it")
            check_output(job.run_dir, RUN_DIR, force)  # --force replaces a run, never a folder of other files
        enclosing.update(_enclosing_run(job.run_dir, out, force))
    set_aside = [_set_aside(run_dir) for run_dir in enclosing]  # only once every job has passed its checks
    logger.info("%d runs into %s", len(jobs), out)
    failures = []
    for index, job in enumerate(jobs, start=1):
        name = str(job.run_dir.relative_to(out)) if job.run_dir.is_relative_to(out) else str(job.run_dir)
        try:
            _train_job(job, data[job.data_dir], config_name, f"{index}/{len(jobs)}: {name}", extra_callbacks)
        except DltrainError as error:  # one diverging point should not cost the others
            logger.error("run %s failed: %s", name, error)
            failures.append((name, str(error)))
    for old in set_aside:  # kept until the sweep is through (a Ctrl-C leaves them, renamed)
        shutil.rmtree(old, ignore_errors=True)
    return failures


def _enclosing_run(run_dir: Path, out: Path, force: bool) -> list[Path]:
    """A run folder between `out` and `run_dir` (an earlier layout's, e.g. a cell's run where its seeds now
    go): a run is never written inside another. Refused, or with `force` returned to be replaced."""
    for parent in run_dir.parents:
        if parent == out or not parent.is_relative_to(out):
            return []
        if (parent / CONFIG_FILE).is_file():
            if not force:
                raise UsageError(
                    f"{parent} holds a run, and {run_dir} would go inside it; choose another --out or pass --force "
                    "to replace it"
                )
            check_output(parent, RUN_DIR, force)  # a run dltrain wrote, never a folder of other files
            return [parent]
    return []


def _set_aside(run_dir: Path) -> Path:
    """Move a run that --force replaces out of the way (a hidden sibling), to be removed after the sweep."""
    aside = run_dir.with_name(f".{run_dir.name}.replaced")
    shutil.rmtree(aside, ignore_errors=True)
    run_dir.rename(aside)
    logger.warning("replacing %s (--force): a run where this sweep's runs go; kept as %s until the end", run_dir, aside)
    return aside


def _train_job(job: Job, data, config_name: str | None, position: str, extra_callbacks) -> None:
    from dltrain.training.session import resume_run, train_run

    state = _existing_state(job.run_dir, job.point.config, data.meta)
    action = {"new": "training", "complete": "complete already, kept", "resumable": "resuming"}.get(
        state, "training again"
    )
    logger.info("run %s (%s)", position, action)
    if state == "resumable":
        resume_run(job.run_dir, job.data_dir)
    elif state != "complete":
        if state == "stale":  # this point's own run, stopped before its first epoch ended
            shutil.rmtree(job.run_dir)
        callbacks = extra_callbacks(job.point) if extra_callbacks else ()
        train_run(data, job.run_dir, job.point.config, config_name, force=state == "foreign", extra_callbacks=callbacks)
