"""metrics-<split>.json: one labelled split's scores, written by `evaluate` (and `train` for the
validation split) in one place and validated wherever it is read."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dltrain.core.errors import DataError, describe_validation_error
from dltrain.core.files import write_json_atomic

METRICS_FORMAT_VERSION = 1


def metrics_file(run_dir: Path, split: str) -> Path:
    return Path(run_dir) / f"metrics-{split}.json"


class ConfusedPair(BaseModel):
    true: str
    predicted: str
    count: int = Field(ge=1)
    share_of_true: float = Field(ge=0, le=1)


class SplitMetrics(BaseModel):
    """The keys every task writes, typed; the task's own metrics (macro_f1, per-class scores, a
    blend's kappa) ride along as extra keys."""

    model_config = ConfigDict(extra="allow")

    format_version: Literal[1] = METRICS_FORMAT_VERSION  # files written before the field are version 1
    split: str
    data_dir: str
    tta: str = "none"
    count: int = Field(ge=0)
    classes: list[str]
    confusion_matrix: list[list[int]]
    # No bounds: kappa is NaN where every label and prediction are one grade (no disagreement to expect).
    accuracy: float | None = None
    quadratic_weighted_kappa: float | None = None
    referable_auc: float | None = Field(None, ge=0, le=1)  # retina: grade 2 or worse, as screening reports it
    referable_sensitivity: float | None = Field(None, ge=0, le=1)  # at the grade cut points the run uses
    referable_specificity: float | None = Field(None, ge=0, le=1)
    steered_by_this_split: list[str] | None = None  # validation only: what it chose in the run
    most_confused: list[ConfusedPair] | None = None  # written before the field: absent
    figures: list[str] | None = None  # the figures written beside it for this split (names in the run folder)


def write_split_metrics(run_dir: Path, metrics: dict) -> SplitMetrics:
    record = SplitMetrics.model_validate({"format_version": METRICS_FORMAT_VERSION, **metrics})
    write_json_atomic(metrics_file(run_dir, record.split), record.model_dump(exclude_none=True))  # as the task wrote it
    return record


def read_split_metrics(run_dir: Path, split: str) -> SplitMetrics | None:
    """The split's metrics, None if it was never scored; a damaged or foreign file is refused in one line."""
    path = metrics_file(run_dir, split)
    if not path.is_file():
        return None
    try:
        return SplitMetrics.model_validate_json(path.read_bytes())
    except ValidationError as error:  # not JSON, a key missing or of the wrong type, another version
        raise DataError(
            f"{path} is damaged ({describe_validation_error(error)}); run 'dltrain evaluate {run_dir} --split {split}' "
            "again"
        ) from None
