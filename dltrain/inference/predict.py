"""`dltrain predict`: a finished run + INPUT -> predictions in the task's submission format (CSV)."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path

import pandas as pd

from dltrain.core.errors import UsageError
from dltrain.core.files import write_text_atomic
from dltrain.core.outputs import OutputKind, check_output, csv_starting_with
from dltrain.data.datadir import META_FILE, DataDir
from dltrain.data.registries import SOURCE_WORDS
from dltrain.runs.rundir import Run, is_run_folder
from dltrain.tasks import task_of
from dltrain.tasks.base import PredictRequest, resolve_tta

logger = logging.getLogger("dltrain")


def model_loader(run: Run, exported: Path | None):
    """`load(sample_shape, what)`: the run's model.keras, or with `exported` the file `dltrain export`
    wrote (checked to take samples of the input's shape)."""
    if exported is None:
        return lambda sample_shape, what: run.load_model()

    def load(sample_shape, what):
        from dltrain.core.console import import_tensorflow_quietly
        from dltrain.inference.exported import ExportedModel

        import_tensorflow_quietly()
        model = ExportedModel(exported)
        model.check_fits(sample_shape, what)
        logger.info("scoring with the exported %s model %s", model.format, exported)
        return model

    return load


STDOUT = Path("-")  # `--out -`: the CSV on standard output


def refuse_swapped_arguments(run_dir: Path, source: str, command: str = "predict", out: str = "FILE.csv") -> None:
    """`dltrain predict hapt models/run`: the run comes first; said in one line, not "no such run"."""
    if is_run_folder(run_dir):
        return
    if is_run_folder(Path(source)) or str(run_dir) in SOURCE_WORDS:
        inputs = shlex.quote(source) + " " + shlex.quote(str(run_dir)) if is_run_folder(Path(source)) else None
        usage = (
            f"dltrain {command} {inputs} --out {out}" if inputs else f"dltrain {command} RUN_DIR {run_dir} --out {out}"
        )
        raise UsageError(f"{run_dir} is an INPUT, not a RUN_DIR: the run comes first, {usage}")


def check_predictions_out(run: Run, source: str, out: Path, exported: Path | None, force: bool) -> None:
    """The CSV is never one of the inputs (nor inside an input folder, nor one of the run's own
    files), and an existing file is replaced only with --force, and only a prediction CSV."""
    if out == STDOUT:
        return
    columns = task_of(run.data_meta).submission_columns
    kind = OutputKind("predictions CSV", folder=False, is_ours=csv_starting_with(*columns))
    inputs = [path for path in (Path(source), exported) if path is not None and path.exists()]
    check_output(out, kind, force, inputs=inputs, containers=[(run.path, run.owns)])


def predict_run(
    run_dir: Path,
    source: str,
    out: Path,
    split: str | None = None,
    probabilities: bool = True,
    tta: str | None = None,
    exported: Path | None = None,
    force: bool = False,
    blend: bool = True,
) -> pd.DataFrame:
    refuse_swapped_arguments(Path(run_dir), source)
    run = Run.open(run_dir)
    check_predictions_out(run, source, out, exported, force)
    if out != STDOUT:
        check_output(
            filled_path(out),
            OutputKind("list of filled rows", folder=False, is_ours=csv_starting_with("image", "level", "reason")),
            force,
        )
    if exported is not None:
        from dltrain.inference.exported import check_export_of

        check_export_of(run, exported)  # an export dltrain wrote from this run, unchanged since
    task = task_of(run.data_meta)
    tta = resolve_tta(task, run, "none" if tta is None and not blend else tta)  # the blend's mode, unless --no-blend
    data, split = data_dir_input(run, task, source, split)
    request = PredictRequest(source, split, probabilities, tta, model_loader(run, exported), blend, data=data)
    frame = task.predict(run, request)
    text = frame.to_csv(index=False, float_format="%.6f")
    if out == STDOUT:
        sys.stdout.write(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out, text)
    if request.filled:
        report_filled(request.filled, out)
    elif out != STDOUT:  # an earlier prediction's list (checked as ours above) no longer describes this CSV
        filled_path(out).unlink(missing_ok=True)
    return frame


def data_dir_input(run: Run, task, source: str, split: str | None) -> tuple[DataDir | None, str | None]:
    """INPUT as a prepared DATA_DIR, checked against the run's data, with the split to predict (the
    requested one, else its unlabelled or test split); (None, None) for any other INPUT. A word the
    task gives a meaning of its own (`hapt`) is never read as a folder of that name."""
    path = Path(source)
    if source in task.source_words or not (path.is_dir() and (path / META_FILE).is_file()):
        if split is not None and (source in task.source_words or path.exists()):  # a missing INPUT: the task says so
            raise UsageError("--split applies only when INPUT is a prepared DATA_DIR")
        return None, None
    data = DataDir.open(path)
    run.data_meta.check_compatible(data.meta, source)
    chosen = data.prediction_split(split)
    logger.info("INPUT %s: the %s split of a prepared DATA_DIR", source, chosen)
    return data, chosen


def filled_path(out: Path) -> Path:
    """Beside the predictions: the rows filled in for inputs that could not be read, and why."""
    return out.with_name(f"{out.stem}-unreadable.csv")


def report_filled(filled: list[dict], out: Path) -> None:
    if out == STDOUT:
        for row in filled:
            logger.warning(
                "%s: unreadable (%s), graded %s from %s", row["image"], row["reason"], row["level"], row["filled_from"]
            )
        return
    write_text_atomic(
        filled_path(out), pd.DataFrame(filled, columns=["image", "level", "reason", "filled_from"]).to_csv(index=False)
    )
    logger.warning("%d unreadable input(s) filled in; the rows and reasons are in %s", len(filled), filled_path(out))
