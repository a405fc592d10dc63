"""provenance.json: what a run is, where it ran and on which data, and what it scored. Its schema,
validated on every read (`Run.open`), and what it records of the software and the source tree."""

from __future__ import annotations

import math
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

import dltrain.tasks  # noqa: F401  (importing the tasks registers the meta.json schemas DataMeta validates)
from dltrain.config.schema import Config
from dltrain.data.datadir import DataMeta

PROVENANCE_FORMAT_VERSION = 1
Status = Literal["running", "interrupted", "complete"]


class DataRecord(BaseModel):
    """The DATA_DIR a run was trained on, with a copy of its meta.json."""

    model_config = ConfigDict(extra="forbid")

    path: str
    meta: DataMeta


class RefitRecord(BaseModel):
    """A final model's origin (`dltrain refit`): the run whose epochs it trains, and how they were chosen."""

    model_config = ConfigDict(extra="forbid")

    run: str
    epochs: int = Field(gt=0)
    chosen_by: str  # "the run's kept epoch" or "--epochs" (e.g. from sweep --folds)


class Provenance(BaseModel):
    """provenance.json: what ran, where, on which data, and what it scored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    format_version: Literal[1] = PROVENANCE_FORMAT_VERSION
    status: Status = "running"
    command: str = ""
    config_source: str | None = None
    seed: int = 0
    versions: dict[str, str] = Field(default_factory=dict)
    git_commit: str | None = None
    device: dict[str, Any] = Field(default_factory=dict)
    backend: str = "tensorflow"
    strategy: str = "default"
    replicas: int = 1
    mixed_precision: bool = False
    memory_growth: bool = False
    precision: str = "float32"
    xla: bool = False
    augmentation: Literal["pipeline", "model"] | None = None  # where augmentation ran (or would have)
    global_batch: int | None = None  # samples per optimizer step, over every replica and process
    deterministic_ops: bool = False
    cudnn_gru: bool = False
    parameters: int = 0
    data: DataRecord | None = None
    fitted_on: list[str] = Field(default_factory=lambda: ["train"])  # the splits trained on (train.fit_on)
    refit_of: RefitRecord | None = None
    ensemble_of: list[str] | None = None  # dltrain ensemble: the member runs, whose outputs the model averages
    input: dict[str, Any] | None = None  # what the input pipeline chose: the image cache, where augmentation runs
    processes: dict[str, Any] | None = None
    tracking: dict[str, str] | None = None
    resumed_after_epochs: list[int] = Field(default_factory=list)
    diverged_at: dict[str, Any] | None = None
    thresholds: dict[str, list[float]] | None = None  # a regression head's cut points, per TTA mode
    epochs_run: int | None = None
    best_epoch: int | None = None
    train_seconds: float | None = None
    metrics: dict[str, dict[str, float]] = Field(default_factory=dict)
    weights_sha256: str | None = None

    @field_validator("thresholds", mode="before")
    @classmethod
    def _one_set_per_mode(cls, thresholds):
        # Runs written before the TTA modes kept one set: the thresholds of predictions without TTA.
        return {"none": thresholds} if isinstance(thresholds, list) else thresholds

    @field_validator("thresholds")
    @classmethod
    def _increasing_finite(cls, thresholds):
        for values in (thresholds or {}).values():
            increasing = all(low < high for low, high in zip(values, values[1:]))
            if len(values) != 4 or not all(math.isfinite(value) for value in values) or not increasing:
                raise ValueError("thresholds must be 4 increasing finite numbers")
        return thresholds


def git_commit() -> str | None:
    """The commit of the dltrain source tree, if it is a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def software_versions() -> dict:
    import keras
    import numpy
    import tensorflow

    from dltrain import __version__

    return {
        "dltrain": __version__,
        "python": platform.python_version(),
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }


def first_provenance(
    data_path: Path, meta: DataMeta, config: Config, config_source: str | None, refit_of: RefitRecord | None = None
) -> Provenance:
    """What a run's provenance.json says before training starts."""
    return Provenance(
        status="running",
        command=" ".join(sys.argv),
        config_source=config_source,
        seed=config.train.seed,
        data=DataRecord(path=str(Path(data_path).resolve()), meta=meta),
        fitted_on=config.train.fit_on.split("+"),
        refit_of=refit_of,
    )
