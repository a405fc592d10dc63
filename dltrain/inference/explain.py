"""`dltrain explain`: a finished run + INPUT -> figures of what made the model's answers (Grad-CAM over
photographs, saliency over signal windows), written into a new folder with `explain.json`, the index of
what each figure shows."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from dltrain.core.errors import DataError, UsageError
from dltrain.core.files import atomic_folder, write_json_atomic
from dltrain.core.outputs import OutputKind, check_output, output_lock
from dltrain.data.datadir import META_FILE
from dltrain.inference.predict import data_dir_input, refuse_swapped_arguments
from dltrain.runs.rundir import Run
from dltrain.tasks import task_of
from dltrain.tasks.base import ExplainRequest

logger = logging.getLogger("dltrain")
EXPLAIN_INDEX = "explain.json"
EXPLANATIONS = OutputKind("folder of explanations", True, (EXPLAIN_INDEX,))
MAX_EXPLAINED = 500  # a figure each: --limit beyond this is a mistake, not a wish


class ExplainedInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str  # the figure, in the folder
    input: str  # the photograph's name or the window's id
    predicted: str | int
    true: str | int | None = None  # where INPUT is a labelled split of a DATA_DIR


class ExplainIndex(BaseModel):
    """explain.json: what each figure of the folder shows."""

    model_config = ConfigDict(extra="forbid")

    format_version: Literal[1] = 1
    run: str
    inputs: list[str]
    split: str | None = None
    figures: list[ExplainedInput]
    unreadable: list[dict[str, str]] = []  # {"input", "reason"}: photographs that could not be read


def explain_run(
    run_dir: Path, sources: list[str], out: Path, split: str | None, limit: int, force: bool
) -> ExplainIndex:
    if not sources:
        raise UsageError("give at least one INPUT to explain")
    if not 1 <= limit <= MAX_EXPLAINED:
        raise UsageError(f"--limit {limit}: give 1 to {MAX_EXPLAINED} (one figure each)")
    refuse_swapped_arguments(Path(run_dir), sources[0], "explain", "DIR")
    run = Run.open(run_dir)
    task = task_of(run.data_meta)
    if len(sources) == 1:
        data, split = data_dir_input(run, task, sources[0], split)
    elif any((Path(source) / META_FILE).is_file() for source in sources):
        raise UsageError("a prepared DATA_DIR is explained on its own: give it as the only INPUT (with --split)")
    elif split is not None:
        raise UsageError("--split applies only when INPUT is one prepared DATA_DIR")
    else:
        data = None
    missing = [source for source in sources if source not in task.source_words and not Path(source).exists()]
    if missing:
        raise DataError(f"{missing[0]}: no such file or folder")
    inputs = [Path(source) for source in sources if Path(source).exists()]
    check_output(out, EXPLANATIONS, force, inputs=inputs, containers=[(run.path, run.owns)])
    request = ExplainRequest(sources, split, limit, data)
    with output_lock(out), atomic_folder(out) as staging:
        rows = task.explain(run, run.load_model(), request, staging)
        unreadable = [{"input": name, "reason": reason} for name, reason in request.rejects]
        index = ExplainIndex(run=str(run.path), inputs=sources, split=split, figures=rows, unreadable=unreadable)
        write_json_atomic(staging / EXPLAIN_INDEX, index.model_dump())
    for name, reason in request.rejects:
        logger.warning("unreadable %s (%s): not explained", name, reason)
    return index
