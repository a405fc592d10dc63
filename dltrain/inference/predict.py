"""`dltrain predict`: a finished run + INPUT -> predictions in the task's submission format (CSV)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from dltrain.core.errors import UsageError
from dltrain.core.files import write_text_atomic
from dltrain.runs.rundir import Run
from dltrain.tasks import task_of
from dltrain.tasks.base import PredictRequest

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


def predict_run(
    run_dir: Path,
    source: str,
    out: Path,
    split: str | None = None,
    probabilities: bool = True,
    tta: bool = False,
    exported: Path | None = None,
) -> pd.DataFrame:
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a CSV file path")
    run = Run.open(run_dir)
    if exported is not None:
        from dltrain.inference.exported import format_of

        format_of(exported)  # a wrong path is one line before any data is read
    request = PredictRequest(source, split, probabilities, tta, model_loader(run, exported))
    frame = task_of(run.data_meta).predict(run, request)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, frame.to_csv(index=False, float_format="%.6f"))
    return frame
